import Foundation
import ProbeStats
import TestSupport
import XCTest

/// The analysis statistics against numpy / scipy (Tests/Fixtures/generate_analyses.py, synthetic.json).
final class AnalysisStatisticsTests: XCTestCase {
    static func fixture() throws -> [String: Any] {
        let data = try Data(contentsOf: RepositoryPaths.fixtures("analyses").appendingPathComponent("synthetic.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func floats(_ value: Any?) throws -> [Float] { try XCTUnwrap(value as? [Double]).map(Float.init) }

    /// Gaussian and logistic MLE fits, log-likelihoods and QQ quantiles vs scipy.stats (logistic.fit).
    func testDistributionShapeMatchesScipy() throws {
        let fixture = try Self.fixture()
        var worst = 0.0
        for name in ["heavy", "normal"] {
            let values = try Self.floats(fixture[name])
            let expected = try XCTUnwrap(fixture["shape_" + name] as? [String: Double])
            let shape = try XCTUnwrap(DistributionShape(values: values))
            let scale = try XCTUnwrap(expected["logistic_scale"])
            func check(_ actual: Double, _ key: String, floor: Double) throws {
                let reference = try XCTUnwrap(expected[key], key)
                worst = max(worst, abs(actual - reference) / max(abs(reference), floor))
                assertClose(actual, reference, "\(name) \(key)", relative: 1e-4, absolute: 1e-4 * floor)
            }
            try check(shape.gaussianLogLikelihood, "gaussian_loglik", floor: 1)
            try check(shape.logisticLogLikelihood, "logistic_loglik", floor: 1)
            try check(shape.logisticLocation, "logistic_loc", floor: scale)
            try check(shape.logisticScale, "logistic_scale", floor: scale)
            XCTAssertEqual(shape.logisticFitsBetter ? 1 : 0, expected["logistic_better"], name)
            for i in DistributionShape.probabilities.indices {
                try check(shape.empiricalQuantiles[i], String(format: "qq_%02d_empirical", i), floor: scale)
                try check(shape.gaussianQuantiles[i], String(format: "qq_%02d_gaussian", i), floor: scale)
                try check(shape.logisticQuantiles[i], String(format: "qq_%02d_logistic", i), floor: scale)
            }
        }
        // Student-t(3) data is heavy-tailed (logistic wins), Gaussian data is not.
        XCTAssertTrue(try XCTUnwrap(DistributionShape(values: try Self.floats(fixture["heavy"]))).logisticFitsBetter)
        XCTAssertFalse(try XCTUnwrap(DistributionShape(values: try Self.floats(fixture["normal"]))).logisticFitsBetter)
        XCTAssertNil(DistributionShape(values: [1, 1, 1]), "a constant tensor has no fit")
        print("AnalysisStatisticsTests: distribution shape worst relative difference vs scipy \(worst)")
    }

    func testNormalQuantileMatchesScipyNdtri() throws {
        let fixture = try Self.fixture()
        let points = try XCTUnwrap(fixture["normal_quantile_points"] as? [Double])
        let expected = try XCTUnwrap(fixture["normal_quantiles"] as? [Double])
        for (p, reference) in zip(points, expected) {
            assertClose(DistributionShape.normalQuantile(p), reference, "Φ⁻¹(\(p))", relative: 1e-12, absolute: 1e-14)
        }
    }

    func testCorrelationsAndNormSummaryMatchNumpy() throws {
        let fixture = try Self.fixture()
        let rows = try XCTUnwrap(fixture["matrix"] as? [[Double]])
        let matrix = rows.flatMap { $0.map(Float.init) }
        let d = rows[0].count
        let correlations = EmbeddingStatistics.rowCorrelations(matrix, count: rows.count, dimension: d)
        let expected = try XCTUnwrap(fixture["correlations"] as? [Double])
        XCTAssertEqual(correlations.count, expected.count)
        for (actual, reference) in zip(correlations, expected) { assertClose(actual, reference, "corrcoef", relative: 1e-12, absolute: 1e-14) }
        let summary = DistributionSummary(values: EmbeddingStatistics.rowNorms(matrix, dimension: d))
        let reference = try XCTUnwrap(fixture["norm_summary"] as? [String: Double])
        let measured = ["token_norm_mean": summary.mean, "token_norm_std": summary.std, "token_norm_min": summary.minimum,
                        "token_norm_max": summary.maximum, "token_norm_p10": summary.p10, "token_norm_p50": summary.p50,
                        "token_norm_p90": summary.p90]
        for (key, value) in measured { assertClose(value, try XCTUnwrap(reference[key]), key, relative: 1e-12, absolute: 1e-14) }
    }

    /// Top tokens: highest score first, ties to the smaller id; the overlap ignores a flipped sign.
    func testDirectionEndsAndSignBlindOverlap() {
        // Vocabulary of 6 tokens in d = 2; u = (1, 0) scores = first column.
        let unembedding: [Float] = [3, 0, 1, 0, 3, 0, -2, 0, 5, 0, -2, 0]
        let ends = DirectionTokens.ends(unembedding: unembedding, vocabulary: 6, dimension: 2, directions: [[1, 0], [-1, 0]], count: 2,
                                        blockRows: 4)
        XCTAssertEqual(ends[0], .init(top: [4, 0], bottom: [3, 5]))
        XCTAssertEqual(ends[1], .init(top: [3, 5], bottom: [4, 0]))
        XCTAssertEqual(DirectionTokens.overlap(ends[0], ends[1]), 1)
        XCTAssertEqual(DirectionTokens.overlap(ends[0], .init(top: [4, 1], bottom: [2, 3])), 0.5)
    }

    func testHistogramAccumulatorUsesFixedBinsWithOutsideCounts() {
        var range = RangeAccumulator()
        [Float(-0.5), 2, .nan].withUnsafeBufferPointer { range.add($0) }
        XCTAssertEqual(range.maxAbs, 2)
        var histogram = HistogramAccumulator(binning: range.binning(binCount: 4))
        histogram.add([-3, -2, -1.5, 0, 1.99, 2, 2.5])
        XCTAssertEqual(histogram.histogram.counts, [2, 0, 1, 2])
        XCTAssertEqual(histogram.histogram.underflow, 1)
        XCTAssertEqual(histogram.histogram.overflow, 1)
        XCTAssertEqual(histogram.total, 7)
    }
}
