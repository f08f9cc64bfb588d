import NeoX
import ProbeStats
import Results
import TestSupport
import XCTest
@testable import Sweep

final class WeightStatisticsTests: XCTestCase {
    func testStatisticsAndHistogramMatchNumpy() throws {
        let fixture = try ProbeFixtures.Synthetic()
        let (w, _) = try fixture.array("w")
        let (reference, _) = try fixture.array("w_ref")
        let bins = Int(try fixture.number("weight_bins"))
        let expected = try fixture.dictionary("weight_stats")
        let binning = HistogramBinning(reference: reference, binCount: bins)
        let stats = WeightStatistics(values: w, reference: reference, binning: binning)
        let rows = stats.metricRows(step: 4, layer: 1, site: "weights:test")
        XCTAssertEqual(Set(rows.map(\.metric)), Set(expected.keys), "metric names")
        for row in rows {
            let value = try XCTUnwrap((expected[row.metric] as? NSNumber)?.doubleValue, row.metric)
            if row.metric.hasPrefix("hist_bin") || row.metric == "hist_underflow" || row.metric == "hist_overflow" {
                XCTAssertEqual(row.value, value, row.metric)  // counts are exact
            } else {
                assertClose(row.value, value, row.metric)
            }
        }
        XCTAssertEqual(stats.histogram.map { $0.counts.reduce(0, +) + $0.underflow + $0.overflow }, w.count)
    }

    func testMeanSquaredDisplacement() throws {
        let fixture = try ProbeFixtures.Synthetic()
        let msd = WeightStatistics.meanSquaredDisplacement(try fixture.array("w").values, previous: try fixture.array("w_prev").values)
        assertClose(msd, try fixture.number("msd"), "msd")
    }

    func testHistogramEdges() {
        let binning = HistogramBinning(range: 1, binCount: 4)
        XCTAssertEqual(binning.bin(-1), 0)
        XCTAssertEqual(binning.bin(1), 3)
        XCTAssertEqual(binning.bin(0), 2)
        XCTAssertEqual(binning.bin(-1.0000001), -1)
        XCTAssertEqual(binning.bin(1.0000001), 4)
        XCTAssertEqual(binning.bin(.nan), 4)
        XCTAssertEqual(HistogramBinning(reference: [0, 0], binCount: 3).range, 1, "all-zero reference falls back to 1")
        XCTAssertEqual(MetricName.histBin(3, of: 32), "hist_bin_03")
        XCTAssertEqual(MetricName.histBin(3, of: 10), "hist_bin_3")
    }

    func testSingularValuesAndEffectiveRankMatchTorch() throws {
        let fixture = try ProbeFixtures.Synthetic()
        let (w, shape) = try fixture.array("w")
        let sigma = try Spectrum.singularValues(w, rows: shape[0], columns: shape[1])
        let expectedSigma = try XCTUnwrap(fixture.expected["singular_values_w"] as? [Double])
        XCTAssertEqual(sigma.count, expectedSigma.count)
        for (a, e) in zip(sigma, expectedSigma) { assertClose(a, e, "singular value") }
        let spectral = SpectralStatistics(singularValues: sigma, hiddenSize: Int(try fixture.number("spectral_w_hidden")))
        let expected = try fixture.dictionary("spectral_w")
        assertClose(spectral.effectiveRank, try fixture.number("effective_rank", in: expected), "erank")
        assertClose(spectral.per, try fixture.number("per", in: expected), "per")
        assertClose(spectral.spectralNorm, try fixture.number("spectral_norm", in: expected), "spectral norm")
    }

    func testOVCircuitSpectraMatchFullProduct() throws {
        let fixture = try ProbeFixtures.Synthetic()
        let d = Int(try fixture.number("ov_hidden")), heads = Int(try fixture.number("ov_heads"))
        let dh = d / heads
        let qkv = try fixture.array("qkv").values, dense = try fixture.array("dense").values
        let expected = try XCTUnwrap(fixture.expected["ov"] as? [[String: Any]])
        for head in 0..<heads {
            let views = AttentionHeadWeights(qkvWeight: qkv, denseWeight: dense, hiddenSize: d, numHeads: heads)
            let wO = views.output(head: head).map(Double.init), wV = views.weight(.value, head: head).map(Double.init)
            let sigma = try Spectrum.ovSingularValues(wO: wO, wV: wV, hidden: d, headDim: dh)
            let expectedSigma = try XCTUnwrap(expected[head]["singular_values"] as? [Double])
            XCTAssertEqual(sigma.count, dh)
            for (a, e) in zip(sigma, expectedSigma) { assertClose(a, e, "head \(head) singular value") }
            let spectral = SpectralStatistics(singularValues: sigma, hiddenSize: d)
            assertClose(spectral.effectiveRank, try fixture.number("effective_rank", in: expected[head]), "head \(head) erank")
            assertClose(spectral.per, try fixture.number("per", in: expected[head]), "head \(head) per")
        }
    }
}
