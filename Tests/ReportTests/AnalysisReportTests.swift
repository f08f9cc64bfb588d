import Foundation
import TestSupport
import XCTest
@testable import Report
@testable import Results

/// The issue-13 report sections from a results directory written here: analysis files, bands,
/// movement, downloads, the partial-sweep banner (rendered in Chromium by docs/screenshots.sh).
final class AnalysisReportTests: XCTestCase {
    static let steps = [0, 4, 16, 64, 256]

    static func writeResults(status: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("neoxprobe-analysis-report-\(UUID().uuidString)")
        var rows = ReportTests.syntheticRows(steps: steps)
        for step in steps {
            let t = Double(step) / 256
            for layer in 0..<4 {
                for bin in 0..<8 {
                    rows.append(MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.histBin(bin, of: 8),
                                          value: Double(100 + bin * layer + step)))
                }
                rows += [MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.histRange, value: 12),
                         MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.histUnderflow, value: 3),
                         MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.histOverflow, value: Double(step / 16)),
                         MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.argmaxDim, value: Double(7 + layer)),
                         MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.topDim(1), value: 7),
                         MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.topDim(2), value: Double(layer)),
                         MetricRow(step: step, layer: layer, site: "weights:gpt_neox.layers.\(layer).mlp.dense_4h_to_h.weight",
                                   metric: MetricName.logisticMinusGaussian, value: t * Double(layer)),
                         MetricRow(step: step, layer: layer, site: "weights:gpt_neox.layers.\(layer).mlp.dense_4h_to_h.weight",
                                   metric: MetricName.gaussianLogLikelihood, value: 2),
                         MetricRow(step: step, layer: layer, site: "weights:gpt_neox.layers.\(layer).mlp.dense_4h_to_h.weight",
                                   metric: MetricName.distanceFromReference, value: t * 3)]
            }
            if step > 0 { rows.append(MetricRow(step: step, layer: nil, site: "weights:embed_out.weight", metric: MetricName.msd, value: 1e-3 * Double(step))) }
            rows.append(MetricRow(step: step, layer: nil, site: SweepNames.embeddingSite, metric: MetricName.tokenNormP50, value: 1 + t))
        }
        let stepsDirectory = directory.appendingPathComponent("steps")
        for step in steps {
            let folder = stepsDirectory.appendingPathComponent(String(format: "step%06d", step))
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let spectrum = SpectrumTable(entries: [.init(layer: 3, matrix: "gpt_neox.layers.3.mlp.dense_4h_to_h", values: (1...16).map { 10 / Double($0) })])
            try spectrum.encode().write(to: folder.appendingPathComponent(SweepNames.spectraFile), atomically: true, encoding: .utf8)
            let n = 8
            let correlation = CorrelationMatrix(count: n, values: (0..<(n * n)).map { $0 % (n + 1) == 0 ? 1 : -0.25 })
            try correlation.encode().write(to: folder.appendingPathComponent(SweepNames.embeddingCorrelationFile), atomically: true, encoding: .utf8)
            let file = SVDDirectionFile(step: step, finalStep: 256, directions: [
                .init(layer: 0, matrix: "gpt_neox.layers.0.mlp.dense_4h_to_h", direction: 1, singularValue: 1.5, topIds: [1, 2],
                      topTokens: [" the", "<b>"], bottomIds: [3, 4], bottomTokens: ["\n", "x"], overlapFinal: step == 256 ? 1 : 0.25),
            ])
            try file.encode().write(to: folder.appendingPathComponent(SweepNames.svdDirectionsFile))
        }
        try MetricsCSV.write(rows, to: directory.appendingPathComponent("metrics.csv"))
        let run = "{\"status\": \"\(status)\", \"weights_reference_step\": 0, \"suite\": {\"steps_selected\": [0, 4, 16, 64, 256, 512]}}"
        try run.write(to: directory.appendingPathComponent("run.json"), atomically: true, encoding: .utf8)
        return directory
    }

    func testAnalysisSectionsBandsDownloadsAndBanner() throws {
        let directory = try Self.writeResults(status: "running")
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = try String(contentsOf: try HTMLReport.generate(results: directory), encoding: .utf8)
        for id in ["percentile-bands", "weight-movement", "activation-distributions", "embedding-structure", "singular-value-spectra",
                   "svd-direction-strings", "weight-distribution-shape"] {
            XCTAssertTrue(page.contains("<section id=\"\(id)"), "section \(id) missing")
        }
        // Partial sweep: status running, and step 512 is selected but has no rows.
        XCTAssertTrue(page.contains("Partial sweep"))
        XCTAssertTrue(page.contains("5 of 6 selected checkpoints have results (none yet for step 512)"))
        // Kurtosis has its normal reference line; histograms say what their colour is.
        XCTAssertTrue(page.contains("normal = 3"))
        XCTAssertTrue(page.contains("fraction of activations") && page.contains("fraction of elements"))
        // Direction strings: escaped, whitespace made visible.
        XCTAssertTrue(page.contains("‹␣the› ‹&lt;b&gt;›") && page.contains("‹↵›"))

        // Every chart comes with its SVG (the same bytes as drawn) and its data.
        let charts = page.components(separatedBy: "<svg class=\"chart\"").count - 1
        let svgLinks = try matches(page, #"download="([^"]+\.svg)" href="data:image/svg\+xml;charset=utf-8;base64,([^"]+)""#)
        XCTAssertGreaterThan(charts, 20)
        XCTAssertEqual(svgLinks.count, charts)
        for link in svgLinks {
            let svg = try XCTUnwrap(Data(base64Encoded: link[2]).flatMap { String(data: $0, encoding: .utf8) })
            XCTAssertTrue(svg.hasPrefix("<svg") && page.contains(svg), link[1])
        }
        let csvLinks = try matches(page, #"download="([^"]+\.csv)" href="data:text/csv;charset=utf-8;base64,([^"]+)""#)
        var csv: [String: String] = [:]
        for link in csvLinks {
            let data = try XCTUnwrap(Data(base64Encoded: link[2]), "\(link[1]): not base64 (\(link[2].prefix(80))…)")
            csv[link[1]] = String(data: data, encoding: .utf8)
        }
        // The correlation matrices link their files next to report.html instead.
        XCTAssertTrue(page.contains("href=\"steps/step000256/embedding_correlation.csv\""))
        XCTAssertEqual(csvLinks.count + Self.steps.count - 1, charts + 1, "a CSV per chart (less the 4 correlation images) plus the direction table")

        // Bands: the median across layers of each step's CKA, as the rows give it.
        let bands = try XCTUnwrap(csv.first { $0.key.hasPrefix("cka-bands-mlp-out") }?.value)
        let rows = try MetricsCSV.read(contentsOf: directory.appendingPathComponent("metrics.csv"))
        for line in bands.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: ",")
            let step = Int(fields[0])!
            let values = rows.filter { $0.step == step && $0.site == "mlp_out" && $0.metric == MetricName.cka }.map(\.value).sorted()
            XCTAssertEqual(Double(fields[4])!, (values[1] + values[2]) / 2, accuracy: 1e-12, "median of 4 layers at step \(step)")
            XCTAssertEqual(Double(fields[2])!, values[0] + (values[1] - values[0]) * 0.3, accuracy: 1e-12, "p10 at step \(step)")
        }
        // MSD per step = msd / (step − previous step).
        let msd = try XCTUnwrap(csv.first { $0.key.hasPrefix("mean-squared-displacement-per-training-step") }?.value)
        XCTAssertTrue(msd.contains("embed_out.weight,64,\(MetricsCSV.format(1e-3 * 64 / 48))"), msd)

        // The correlation image is a valid PNG of one pixel per entry, diagonal = +1 colour.
        let png = try XCTUnwrap(try matches(page, #"data:image/png;base64,([^"]+)"#).first.flatMap { Data(base64Encoded: $0[1]) })
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
        XCTAssertEqual(png[16..<24].map { $0 }, [0, 0, 0, 8, 0, 0, 0, 8], "8 × 8")
        // IDAT = one stored deflate block: zlib header (2), block header (5), then row 0 = filter byte + pixels.
        let idat = try XCTUnwrap(png.range(of: Data("IDAT".utf8))).upperBound
        XCTAssertEqual(Array(png[(idat + 7)..<(idat + 11)]), [0, 178, 24, 43])

        // A finished sweep has no banner.
        let complete = try Self.writeResults(status: "complete")
        defer { try? FileManager.default.removeItem(at: complete) }
        var run = try String(contentsOf: complete.appendingPathComponent("run.json"), encoding: .utf8)
        run = run.replacingOccurrences(of: ", 512]", with: "]")
        try run.write(to: complete.appendingPathComponent("run.json"), atomically: true, encoding: .utf8)
        XCTAssertFalse(try String(contentsOf: try HTMLReport.generate(results: complete), encoding: .utf8).contains("Partial sweep"))
    }

    private func matches(_ text: String, _ pattern: String) throws -> [[String]] {
        let expression = try NSRegularExpression(pattern: pattern)
        return expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { match in
            (0..<match.numberOfRanges).map { String(text[Range(match.range(at: $0), in: text)!]) }
        }
    }
}
