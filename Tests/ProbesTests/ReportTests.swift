import Foundation
import XCTest
@testable import Probes

final class ReportTests: XCTestCase {
    /// A small synthetic sweep shaped like the real one: 4 layers, Pythia-like steps including 0.
    static func syntheticRows(layers: Int = 4, includeEvaluations: Bool = true) -> [MetricRow] {
        let steps = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 4000, 8000, 16000, 33000, 66000, 143000]
        var rows: [MetricRow] = []
        for step in steps {
            let progress = log10(Double(step) + 1) / log10(143001)
            for layer in 0..<layers {
                let depth = Double(layer + 1)
                rows.append(MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.maxAbs,
                                      value: 2 + depth * pow(10, 2.5 * progress) * (layer == layers - 1 ? 0.5 : 1)))
                rows.append(MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.kurtosis,
                                      value: 3 + depth * 40 * progress * progress))
                for (site, offset) in [("attn_out", 0.0), ("mlp_out", 0.15)] {
                    let cka = min(1, max(0, 0.1 + 0.9 * pow(progress, 1.5 + offset * depth) - 0.05 * depth * (1 - progress)))
                    rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.cka, value: step == 143000 ? 1 : cka))
                }
                for (tensor, scale) in [("attention.dense.weight", 1.0), ("mlp.dense_4h_to_h.weight", 2.0)] {
                    let site = "weights:gpt_neox.layers.\(layer).\(tensor)"
                    rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.frobeniusNorm,
                                          value: scale * (1.1 + progress * (2 + 0.3 * depth))))
                    rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.per,
                                          value: 0.82 - 0.5 * progress * depth / Double(layers)))
                }
            }
            if includeEvaluations {
                rows.append(MetricRow(step: step, layer: nil, site: "lambada", metric: MetricName.perplexity, value: 60000 * pow(10, -3.8 * progress)))
                rows.append(MetricRow(step: step, layer: nil, site: "pile_val", metric: MetricName.perplexity, value: 50000 * pow(10, -3.2 * progress)))
                rows.append(MetricRow(step: step, layer: nil, site: "lambada", metric: MetricName.acc, value: 0.55 * progress * progress))
            }
        }
        return rows
    }

    func testReportContainsEveryPlotForACompleteSweep() throws {
        let html = HTMLReport(rows: Self.syntheticRows(), runInfo: "{\"model\": \"pythia-mini\", \"steps\": [0, 1]}").render()
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertEqual(html.components(separatedBy: "<svg class=\"chart\"").count - 1, 10, "2 outlier + 2 CKA + 4 weight + 2 eval charts")
        XCTAssertEqual(html.components(separatedBy: "<svg").count, html.components(separatedBy: "</svg>").count)
        XCTAssertFalse(html.contains("class=\"missing\""))
        for text in ["CKA of attn_out", "CKA of mlp_out", "PER of mlp.dense_4h_to_h.weight", "LAMBADA accuracy", "layer 3",
                     "&quot;model&quot;", "pile_val"] {
            XCTAssertTrue(html.contains(text), "missing \(text)")
        }
        XCTAssertFalse(html.contains("http://") && html.contains("<script"), "must be self-contained")
        XCTAssertFalse(html.contains("<link"), "no external resources")
        XCTAssertFalse(html.lowercased().contains("nan"))
        try assertBalancedTags(html)
    }

    func testMissingMetricsAreNotedNotPlotted() throws {
        let rows = Self.syntheticRows(includeEvaluations: false).filter { $0.site != "mlp_out" }
        let html = HTMLReport(rows: rows).render()
        XCTAssertEqual(html.components(separatedBy: "<svg class=\"chart\"").count - 1, 7, "2 outlier + 1 CKA + 4 weight charts")
        XCTAssertTrue(html.contains("no &#39;cka&#39; rows for site &#39;mlp_out&#39;"))
        XCTAssertTrue(html.contains("Perplexity: no &#39;perplexity&#39; rows"))
        XCTAssertTrue(html.contains("LAMBADA accuracy: no"))
        try assertBalancedTags(html)
    }

    func testGenerateWritesReportNextToMetrics() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try MetricsCSV.write(Self.syntheticRows(layers: 2), to: directory.appendingPathComponent("metrics.csv"))
        let written = try HTMLReport.generate(results: directory)
        XCTAssertEqual(written.lastPathComponent, "report.html")
        let html = try String(contentsOf: written, encoding: .utf8)
        XCTAssertTrue(html.contains("layer 1") && !html.contains("layer 2"))
    }

    /// Not a screenshot test: with NEOXPROBE_REPORT_DIR set, leaves a synthetic metrics.csv and its
    /// report.html there for a human (or headless Chromium) to look at.
    func testWriteSyntheticReportForInspection() throws {
        guard let path = ProcessInfo.processInfo.environment["NEOXPROBE_REPORT_DIR"] else {
            throw XCTSkip("set NEOXPROBE_REPORT_DIR to write a synthetic report for inspection")
        }
        let directory = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let layers = Int(ProcessInfo.processInfo.environment["NEOXPROBE_REPORT_LAYERS"] ?? "") ?? 4
        try MetricsCSV.write(Self.syntheticRows(layers: layers), to: directory.appendingPathComponent("metrics.csv"))
        try AtomicFile.write("{\"model\": \"synthetic\", \"reference_step\": 143000}", to: directory.appendingPathComponent("run.json"))
        try HTMLReport.generate(results: directory)
    }

    /// Cheap well-formedness check: every opened element (bar void ones) is closed, in order.
    private func assertBalancedTags(_ html: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let void: Set<String> = ["meta", "!doctype", "br"]
        var stack: [String] = []
        let pattern = try NSRegularExpression(pattern: "<(/?)([A-Za-z!][A-Za-z0-9]*)[^>]*?(/?)>")
        let ns = html as NSString
        for match in pattern.matches(in: html, range: NSRange(location: 0, length: ns.length)) {
            let closing = ns.substring(with: match.range(at: 1)) == "/"
            let name = ns.substring(with: match.range(at: 2)).lowercased()
            if ns.substring(with: match.range(at: 3)) == "/" || void.contains(name) { continue }
            if closing {
                guard stack.last == name else { XCTFail("unbalanced </\(name)>, open: \(stack.suffix(3))", file: file, line: line); return }
                stack.removeLast()
            } else {
                stack.append(name)
            }
        }
        XCTAssertEqual(stack, [], "unclosed elements", file: file, line: line)
    }
}
