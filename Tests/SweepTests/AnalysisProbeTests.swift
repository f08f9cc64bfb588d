import Formats
import Foundation
import ProbeStats
import Results
import TestSupport
import XCTest
@testable import Sweep

/// The analysis probes on the real pythia-mini suite against numpy / scipy / PyTorch / HF
/// (Tests/Fixtures/generate_analyses.py → Tests/Fixtures/analyses/pythia_mini.json).
final class AnalysisProbeTests: XCTestCase {
    struct Fixture {
        let json: [String: Any]
        /// "step|layer|site|metric" → value.
        let rows: [String: Double]

        init() throws {
            let data = try Data(contentsOf: RepositoryPaths.fixtures("analyses").appendingPathComponent("pythia_mini.json"))
            json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            var rows: [String: Double] = [:]
            for row in try XCTUnwrap(json["rows"] as? [[Any]]) {
                let layer = (row[1] as? Int).map(String.init) ?? ""
                rows["\(row[0])|\(layer)|\(row[2])|\(row[3])"] = try XCTUnwrap((row[4] as? NSNumber)?.doubleValue)
            }
            self.rows = rows
        }

        static func key(_ row: MetricRow) -> String { "\(row.step)|\(row.layer.map(String.init) ?? "")|\(row.site)|\(row.metric)" }

        func expected(_ filter: (String) -> Bool) -> [String: Double] { rows.filter { filter($0.key) } }
    }

    /// Activation histograms (bins from step 2000), embedding structure and SVD direction strings
    /// through a sweep of all eight steps: rows, the per-checkpoint files, identical token lists.
    func testSweepHistogramsEmbeddingsAndDirectionsMatchReference() throws {
        try SweepFixture.requireShared()
        let fixture = try Fixture()
        let output = try SweepFixture.temporaryDirectory("analyses")
        defer { try? FileManager.default.removeItem(at: output) }
        _ = try SweepRunner(options: SweepFixture.options(output: output, probes: [.activationHistograms, .embeddings, .svdDirections])).run()
        let measured = try MetricsCSV.read(contentsOf: output.appendingPathComponent("metrics.csv"))
        var byKey: [String: Double] = [:]
        for row in measured { byKey[Fixture.key(row)] = row.value }

        let sites = ["resid_pre", "attn_out", "mlp_out", "resid_post"]
        let histogramKeys = fixture.expected { key in sites.contains { key.contains("|\($0)|hist_") } }
        let elements = 512.0 * 64
        var worstCount = 0.0, worstRange = 0.0, worstEmbedding = 0.0, compared = 0
        for (key, expected) in histogramKeys {
            let actual = try XCTUnwrap(byKey[key], "no row \(key)")
            if key.hasSuffix("hist_range") {
                worstRange = max(worstRange, abs(actual - expected) / expected)
                assertClose(actual, expected, key)
            } else {
                // float32 activations agree with HF to ~1e-6, so an element on a bin edge may land on
                // the other side: counts agree to within 1e-4 of the site's 32768 elements.
                worstCount = max(worstCount, abs(actual - expected))
                XCTAssertLessThanOrEqual(abs(actual - expected), 1e-4 * elements, key)
            }
            compared += 1
        }
        XCTAssertEqual(compared, 8 * 16 * 67)
        for (key, expected) in fixture.expected({ $0.contains("|embedding:") }) {
            let actual = try XCTUnwrap(byKey[key], "no row \(key)")
            worstEmbedding = max(worstEmbedding, abs(actual - expected) / max(abs(expected), 1e-12))
            assertClose(actual, expected, key, relative: 1e-4, absolute: 1e-9)
        }
        let files = try AnalysisFiles.read(results: output)
        let correlationRows = try XCTUnwrap(fixture.json["correlation_rows"] as? [String: [[Double]]])
        for (step, rows) in correlationRows {
            let matrix = try XCTUnwrap(files.correlations[Int(step)!])
            XCTAssertEqual(matrix.count, 256)
            for (i, row) in rows.enumerated() {
                for (j, expected) in row.enumerated() {
                    // The file keeps 7 significant digits.
                    assertClose(matrix.values[i * 256 + j], expected, "corr[\(i), \(j)] step \(step)", relative: 1e-4, absolute: 1e-6)
                }
            }
        }

        // Direction strings: identical token ids and decoded strings, overlaps and singular values.
        let directions = try XCTUnwrap(fixture.json["svd_directions"] as? [String: [[String: Any]]])
        var tokenLists = 0, worstSingular = 0.0
        for (step, records) in directions {
            let file = try XCTUnwrap(files.directions[Int(step)!], "no svd_directions.json for step \(step)")
            XCTAssertEqual(file.directions.count, records.count)
            for (record, actual) in zip(records, file.directions) {
                let label = "step \(step) \(actual.matrix) direction \(actual.direction)"
                XCTAssertEqual(actual.matrix, record["matrix"] as? String)
                XCTAssertEqual(actual.direction, record["direction"] as? Int)
                XCTAssertEqual(actual.topIds, record["top_ids"] as? [Int], label)
                XCTAssertEqual(actual.bottomIds, record["bottom_ids"] as? [Int], label)
                XCTAssertEqual(actual.topTokens, record["top_tokens"] as? [String], label)
                XCTAssertEqual(actual.bottomTokens, record["bottom_tokens"] as? [String], label)
                XCTAssertEqual(actual.overlapFinal, record["overlap_final"] as? Double, label)
                let sigma = try XCTUnwrap(record["singular_value"] as? Double)
                worstSingular = max(worstSingular, abs(actual.singularValue - sigma) / sigma)
                assertClose(actual.singularValue, sigma, label, relative: 1e-4, absolute: 0)
                tokenLists += 2
            }
        }
        for (key, expected) in fixture.expected({ $0.contains("|svd:") }) {
            // Per-direction overlaps are exact fractions; their mean is summed in another order.
            assertClose(try XCTUnwrap(byKey[key], key), expected, key, relative: 1e-12, absolute: 1e-15)
        }
        XCTAssertEqual(tokenLists, 8 * 4 * 3 * 4 * 2)
        print("AnalysisProbeTests: histogram counts worst |Δ| \(worstCount) of \(Int(elements)); hist_range worst relative \(worstRange); "
            + "embedding rows worst relative \(worstEmbedding); \(tokenLists) token lists identical; singular values worst relative \(worstSingular)")
    }

    /// Full spectra (QKV, dense, MLP in/out, per-head OV and QK) vs torch.linalg.svdvals of the full products.
    func testSpectraMatchTorch() throws {
        try SweepFixture.requireShared()
        let fixture = try Fixture()
        let spectra = try XCTUnwrap(fixture.json["spectra"] as? [String: [[Any]]])
        var worst = 0.0, values = 0
        for (stepText, entries) in spectra {
            let step = Int(stepText)!
            let checkpoint = try Checkpoint(directory: SweepFixture.suite.appendingPathComponent("step\(step)"))
            let (rows, table) = try WeightAnalyses().spectra(checkpoint: checkpoint, step: step)
            XCTAssertEqual(table.entries.count, entries.count)
            for (entry, expected) in zip(table.entries, entries) {
                XCTAssertEqual(entry.matrix, expected[1] as? String)
                let reference = try XCTUnwrap(expected[2] as? [Double])
                XCTAssertEqual(entry.values.count, reference.count, entry.matrix)
                let top = reference[0]
                for (actual, sigma) in zip(entry.values, reference) {
                    // Relative 1e-4, with a floor of 1e-10·σ_max for values at rounding level.
                    worst = max(worst, abs(actual - sigma) / max(sigma, 1e-10 * top))
                    assertClose(actual, sigma, "\(entry.matrix) step \(step)", relative: 1e-4, absolute: 1e-10 * top)
                    values += 1
                }
            }
            for row in rows {
                let expected = try XCTUnwrap(fixture.rows[Fixture.key(row)], "no reference for \(Fixture.key(row))")
                assertClose(row.value, expected, Fixture.key(row))
            }
            // The file round-trips.
            XCTAssertEqual(try SpectrumTable.decode(table.encode()), table)
        }
        XCTAssertGreaterThan(values, 4 * 4 * 300)
        print("AnalysisProbeTests: \(values) singular values, worst relative difference vs torch \(worst)")
    }

    /// Gaussian vs logistic fits and QQ quantiles of every tensor vs scipy.stats.
    func testWeightShapeMatchesScipy() throws {
        try SweepFixture.requireShared()
        let fixture = try Fixture()
        let steps = try XCTUnwrap(fixture.json["shape_steps"] as? [Int])
        var worst = 0.0, compared = 0
        for step in steps {
            let checkpoint = try Checkpoint(directory: SweepFixture.suite.appendingPathComponent("step\(step)"))
            let rows = try WeightAnalyses().weightShape(checkpoint: checkpoint, step: step)
            let expected = fixture.expected { $0.hasPrefix("\(step)|") && ($0.contains("|qq_") || $0.contains("loglik") || $0.contains("|logistic_")) }
            XCTAssertEqual(rows.count, expected.count, "step \(step) row count")
            for row in rows {
                let key = Fixture.key(row)
                let reference = try XCTUnwrap(expected[key], "no reference for \(key)")
                let scaleKey = "\(step)|\(row.layer.map(String.init) ?? "")|\(row.site)|logistic_scale"
                let scale = try XCTUnwrap(fixture.rows[scaleKey])
                let gaussianKey = scaleKey.replacingOccurrences(of: "logistic_scale", with: "gaussian_loglik")
                // Locations and quantiles are measured against the distribution's scale, log-likelihoods
                // (and their difference) against the Gaussian log-likelihood.
                let floor = row.metric.contains("loglik") ? abs(fixture.rows[gaussianKey]!) : scale
                if row.metric == MetricName.logisticFitsBetter {
                    XCTAssertEqual(row.value, reference, key)
                } else {
                    worst = max(worst, abs(row.value - reference) / max(abs(reference), floor))
                    assertClose(row.value, reference, key, relative: 1e-4, absolute: 1e-4 * floor)
                }
                compared += 1
            }
        }
        XCTAssertGreaterThan(compared, 1000)
        print("AnalysisProbeTests: weight_shape \(compared) rows, worst relative difference vs scipy \(worst)")
    }
}
