import Formats
import Foundation
import TestSupport
import XCTest
@testable import Report
@testable import Results

final class ReportTests: XCTestCase {
    /// A small synthetic sweep shaped like the real one: 4 layers, Pythia-like steps including 0,
    /// every site and metric the report plots (names as `neoxprobe sweep` writes them).
    static func syntheticRows(layers: Int = 4, includeEvaluations: Bool = true, includeHistograms: Bool = true,
                              steps: [Int] = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 4000, 8000, 16000, 33000, 66000, 143000])
        -> [MetricRow] {
        var rows: [MetricRow] = []
        for step in steps {
            let progress = log10(Double(step) + 1) / log10(143001)
            for layer in 0..<layers {
                let depth = Double(layer + 1)
                rows.append(MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.maxAbs,
                                      value: 2 + depth * pow(10, 2.5 * progress) * (layer == layers - 1 ? 0.5 : 1)))
                rows.append(MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.meanNorm,
                                      value: 0.5 + depth * pow(10, 1.5 * progress)))
                rows.append(MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.kurtosis,
                                      value: 3 + depth * 40 * progress * progress))
                // resid_pre and the outlier dimensions (drawn since issue 13).
                rows.append(MetricRow(step: step, layer: layer, site: "resid_pre", metric: MetricName.maxAbs, value: 1 + depth * pow(10, 2 * progress)))
                rows.append(MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.argmaxDim, value: step < 1000 ? Double(layer) : 7))
                rows.append(MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.topDim(1), value: step < 1000 ? Double(layer) : 7))
                rows.append(MetricRow(step: step, layer: layer, site: "resid_post", metric: MetricName.topDim(2), value: 11))
                for (site, offset) in [("attn_out", 0.0), ("mlp_out", 0.15)] {
                    let cka = min(1, max(0, 0.1 + 0.9 * pow(progress, 1.5 + offset * depth) - 0.05 * depth * (1 - progress)))
                    rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.cka, value: step == 143000 ? 1 : cka))
                    rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.maxAbs,
                                          value: 0.1 + (1 + offset) * depth * pow(10, 2 * progress)))
                }
                for (tensor, scale) in [("attention.dense.weight", 1.0), ("mlp.dense_4h_to_h.weight", 2.0)] {
                    let site = "weights:gpt_neox.layers.\(layer).\(tensor)"
                    let per = 0.82 - 0.5 * progress * depth / Double(layers)
                    rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.frobeniusNorm,
                                          value: scale * (1.1 + progress * (2 + 0.3 * depth))))
                    rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.effectiveRank, value: per * 64))
                    rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.per, value: per))
                    rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.distanceFromReference, value: scale * progress * depth))
                    if includeHistograms {
                        // 32 fixed bins on [−R, R] of 4096 elements, a Gaussian that widens with training
                        // (spilling past R late on).
                        let range = 0.05 * scale, sigma = range * (0.2 + 0.6 * progress * depth / Double(layers))
                        var counts = (0..<32).map { bin -> Double in
                            let centre = -range + 2 * range * (Double(bin) + 0.5) / 32
                            return (4096 * 2 * range / 32 * exp(-centre * centre / (2 * sigma * sigma)) / (sigma * (2 * Double.pi).squareRoot())).rounded()
                        }
                        counts[16] += 4096 - counts.reduce(0, +) - 2 * (progress > 0.8 ? 3 : 0)
                        rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.histRange, value: range))
                        rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.histUnderflow, value: progress > 0.8 ? 3 : 0))
                        rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.histOverflow, value: progress > 0.8 ? 3 : 0))
                        for (bin, count) in counts.enumerated() {
                            rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.histBin(bin, of: 32), value: count))
                        }
                    }
                }
                if includeHistograms {
                    for head in 0..<4 {
                        let site = "weights:gpt_neox.layers.\(layer).attention.w_ov.head\(head)"
                        let rank = 14 - 6 * progress * depth / Double(layers) + Double(head) * 0.25
                        rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.effectiveRank, value: rank))
                        rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.per, value: rank / 64))
                        rows.append(MetricRow(step: step, layer: layer, site: site, metric: "spectral_norm", value: 1 + progress))
                    }
                }
            }
            if step > 0 {
                rows.append(MetricRow(step: step, layer: nil, site: "weights:embed_out.weight", metric: MetricName.msd,
                                      value: 1e-6 * pow(10, 4 * progress)))
            }
            if includeEvaluations {
                rows.append(MetricRow(step: step, layer: nil, site: "eval_tokens", metric: MetricName.perplexity, value: 50000 * pow(10, -3.2 * progress)))
                rows.append(MetricRow(step: step, layer: nil, site: "eval_tokens", metric: MetricName.tokenCount, value: 2044))
                rows.append(MetricRow(step: step, layer: nil, site: "lambada", metric: MetricName.acc, value: 0.55 * progress * progress))
                rows.append(MetricRow(step: step, layer: nil, site: "lambada", metric: MetricName.perplexity, value: 6e6 * pow(10, -5 * progress)))
                rows.append(MetricRow(step: step, layer: nil, site: "lambada", metric: SweepNames.exampleCount, value: 300))
            }
        }
        return rows
    }

    /// The shape of the `run.json` a sweep writes (abridged).
    static let sweepRunJSON = """
    {"tool": "neoxprobe", "version": "0.1.0", "status": "complete", "fingerprint": "e4b085b935f1c8ed",
     "suite": {"spec": "../shared/models/pythia-mini", "root": "/models/pythia-mini", "kind": "directory",
               "steps_available": [0, 16, 1000], "steps_selected": [0, 16, 1000]},
     "data": {"command": "sweep", "summary": "/data/minipile/document.bin rows 0..<4, first 512 tokens of each",
              "tokens": {"sequences": 4, "sequence_length": 512, "count": 2048, "hash": "bdef63efa21b4a95"}},
     "options": {"lambada_limit": "300", "lambada_data": "/data/lambada_test.jsonl"},
     "probes": ["outliers", "cka", "weights", "perplexity", "lambada"],
     "reference_step": 1000, "weights_reference_step": 0,
     "identical_checkpoints": [{"step": 16, "identical_to_step": 0}]}
    """

    /// An unlimited LAMBADA run is recorded as `lambada_limit: "all"` (SweepRunner's canonical
    /// options) and must read "all examples", not "first all examples".
    func testUnlimitedLambadaRunReadsAllExamples() {
        let runJSON = Self.sweepRunJSON.replacingOccurrences(of: "\"lambada_limit\": \"300\"", with: "\"lambada_limit\": \"all\"")
        let html = HTMLReport(rows: Self.syntheticRows(steps: [0, 16, 1000]), runInfo: runJSON).render()
        XCTAssertTrue(html.contains("<th>LAMBADA</th><td>all examples of /data/lambada_test.jsonl</td>"))
        XCTAssertFalse(html.contains("first all"))
    }

    /// Hostile values (1e300, ±1e308, NaN, ±inf) and an Int.max step render a page: no trap in a
    /// Double→Int conversion, no endless tick loop; values that cannot be plotted are said to be left out.
    func testHostileValuesRenderWithoutCrashing() {
        var rows = Self.syntheticRows(steps: [0, 16, 1000])
        for (k, value) in [1e300, -1e308, 1e308, .nan, .infinity, -.infinity].enumerated() {
            rows.append(MetricRow(step: 16 + k, layer: 0, site: "resid_post", metric: MetricName.maxAbs, value: value))
            rows.append(MetricRow(step: 16, layer: k, site: "attn_out", metric: MetricName.cka, value: value))
        }
        rows.append(MetricRow(step: Int.max, layer: 0, site: "resid_post", metric: MetricName.maxAbs, value: 1))
        rows.append(MetricRow(step: Int.max - 1, layer: nil, site: SweepNames.lambadaSite, metric: MetricName.acc, value: .nan))
        let html = HTMLReport(rows: rows).render()
        XCTAssertTrue(html.contains("<svg"))
        XCTAssertTrue(html.contains("not finite"), "the page says non-finite values were left out")
    }

    /// The SVG of each chart, in page order.
    private func charts(_ html: String) -> [String] {
        html.components(separatedBy: "<svg class=\"chart\"").dropFirst().map { $0.components(separatedBy: "</svg>")[0] }
    }

    func testReportContainsEveryPlotForACompleteSweep() throws {
        let html = HTMLReport(rows: Self.syntheticRows(), runInfo: "{\"model\": \"pythia-mini\", \"steps\": [0, 1]}").render()
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertEqual(charts(html).count, 31, "8 outlier + 2 CKA + 5 band + 3 movement + 6 weight + 4 histogram + 3 eval charts")
        XCTAssertEqual(html.components(separatedBy: "<svg").count, html.components(separatedBy: "</svg>").count)
        XCTAssertFalse(html.contains("class=\"missing\""))
        for text in ["CKA of attn_out", "CKA of mlp_out", "max |x| of the attention output (attn_out)", "max |x| of the MLP output (mlp_out)",
                     "Mean per-token L2 norm of resid_post", "PER of mlp.dense_4h_to_h.weight",
                     "PER of attention.dense.weight", "PER (effective rank / hidden size)", "Unembedding (embed_out.weight) movement",
                     "Perplexity on the evaluation tokens (2044 scored tokens)", "LAMBADA accuracy (300 examples)",
                     "LAMBADA perplexity (300 examples)", "layer 3", "&quot;model&quot;",
                     "Effective rank of W_OV per head (mean of 4 heads per layer)",
                     "layers.0.attention.dense.weight: R = ", "layers.3.mlp.dense_4h_to_h.weight: R = "] {
            XCTAssertTrue(html.contains(text), "missing \(text)")
        }
        // Unknown run.json layouts still get a table of their scalars.
        XCTAssertTrue(html.contains("<table class=\"run\"><tr><th>model</th><td>pythia-mini</td></tr></table>"))
        XCTAssertFalse(html.contains("class=\"warning\""), "no identical checkpoints, no warning")
        XCTAssertFalse(html.contains("http://") && html.contains("<script"), "must be self-contained")
        XCTAssertFalse(html.contains("<link"), "no external resources")
        XCTAssertFalse(html.lowercased().contains("nan"))
        try assertBalancedTags(html)
    }

    func testPerplexitiesOfDifferentScalesGetTheirOwnCharts() throws {
        let charts = charts(HTMLReport(rows: Self.syntheticRows()).render())
        let evaluation = charts.filter { $0.contains("eval_tokens, step ") }
        let lambada = charts.filter { $0.contains("lambada, step ") }
        XCTAssertEqual(evaluation.count, 1)
        XCTAssertEqual(lambada.count, 2, "accuracy and perplexity")
        XCTAssertFalse(evaluation[0].contains("lambada"))
        XCTAssertTrue(lambada.contains { $0.contains("LAMBADA accuracy") } && lambada.contains { $0.contains("LAMBADA perplexity") })
        for chart in evaluation + lambada where !chart.contains("accuracy") {
            XCTAssertTrue(chart.contains("(log scale)</text>"), "perplexity axes are logarithmic")
        }
        // Accuracy starts at 0 even when every value is 0 (an untrained model).
        let zeros = Self.syntheticRows(steps: [0, 16, 1000]).map { row -> MetricRow in
            var row = row
            if row.metric == MetricName.acc { row.value = 0 }
            return row
        }
        let accuracy = self.charts(HTMLReport(rows: zeros).render()).first { $0.contains("LAMBADA accuracy") }!
        XCTAssertTrue(accuracy.contains(">0</text>") && accuracy.contains(">1</text>"))
        XCTAssertFalse(accuracy.contains(">-0.5</text>"))
    }

    func testRunTableAndIdenticalCheckpointWarning() throws {
        var rows = Self.syntheticRows(steps: [0, 16, 1000])
        rows.insert(MetricRow(step: 16, layer: nil, site: SweepNames.checkpointSite, metric: SweepNames.identicalToStep, value: 0), at: 0)
        let html = HTMLReport(rows: rows, runInfo: Self.sweepRunJSON).render()
        XCTAssertTrue(html.contains("<div class=\"warning\""))
        XCTAssertTrue(html.contains("<li>step 16 is identical to step 0</li>"))
        XCTAssertTrue(html.contains("1 checkpoint has weights bit-identical"))
        for text in ["<th>Suite</th><td>/models/pythia-mini (directory)</td>", "<th>Steps</th><td>3: 0, 16, 1000</td>",
                     "<th>Data</th><td>/data/minipile/document.bin rows 0..&lt;4, first 512 tokens of each</td>",
                     "<th>Tokens</th><td>2048 tokens (4 sequences × 512), hash bdef63efa21b4a95</td>",
                     "<th>Probes</th><td>outliers, cka, weights, perplexity, lambada</td>",
                     "<th>Reference</th><td>CKA: step 1000; weight distance: step 0</td>",
                     "<th>LAMBADA</th><td>first 300 examples of /data/lambada_test.jsonl</td>",
                     "<th>Identical checkpoints</th><td>step 16 = step 0</td>", "<summary>run.json</summary>"] {
            XCTAssertTrue(html.contains(text), "missing \(text)")
        }
        // The warning and the table come before the first plot.
        let warning = try XCTUnwrap(html.range(of: "class=\"warning\""))
        let table = try XCTUnwrap(html.range(of: "<table class=\"run\">"))
        let firstChart = try XCTUnwrap(html.range(of: "<svg class=\"chart\""))
        XCTAssertLessThan(warning.lowerBound, firstChart.lowerBound)
        XCTAssertLessThan(table.lowerBound, firstChart.lowerBound)
        try assertBalancedTags(html)
        // run.json alone is enough to raise the warning; rows alone too.
        let fromRunJSON = HTMLReport(rows: Array(rows.dropFirst()), runInfo: Self.sweepRunJSON).render()
        XCTAssertTrue(fromRunJSON.contains("<li>step 16 is identical to step 0</li>"))
        let fromRows = HTMLReport(rows: rows).render()
        XCTAssertEqual(fromRows.components(separatedBy: "<li>").count - 1, 1)
    }

    func testResponsiveGridAndWideHeatmaps() throws {
        let many = HTMLReport(rows: Self.syntheticRows()).render()
        XCTAssertTrue(many.contains("grid-template-columns:repeat(auto-fill,minmax(min(600px,100%),1fr))"))
        XCTAssertTrue(many.contains("svg.chart{display:block;width:100%;height:auto}"))
        XCTAssertEqual(many.components(separatedBy: "<figure class=\"wide\">").count - 1, 6, "19 steps: 2 CKA heatmaps and 4 histograms span the row")
        let few = HTMLReport(rows: Self.syntheticRows(steps: [0, 4, 16, 64, 256, 512, 1000, 2000])).render()
        XCTAssertFalse(few.contains("<figure class=\"wide\">"), "8 steps: heatmaps sit side by side")
        // Every line chart shares the sweep's step axis: msd has no step 0 but keeps the 0 tick.
        let msd = try XCTUnwrap(charts(few).first { $0.contains("embed_out.weight") })
        XCTAssertTrue(msd.contains("class=\"break\""))
    }

    func testManyLayersGetAColourBarLegend() {
        let series = (0..<24).map { layer in Series(label: "layer \(layer)", points: [(0, 1.0), (1000, Double(layer + 2))]) }
        let svg = LineChart(title: "deep", yTitle: "y", series: series, ordered: true, preferLogY: false).render()
        XCTAssertEqual(svg.components(separatedBy: "<g class=\"legend\">").count - 1, 1)
        XCTAssertTrue(svg.contains(">layer 0</text>") && svg.contains(">layer 23</text>"))
        XCTAssertFalse(svg.contains(">layer 5</text>"))
        let single = LineChart(title: "one", yTitle: "y", series: [series[0]], ordered: false, preferLogY: false).render()
        XCTAssertFalse(single.contains("class=\"legend\""), "a single series needs no legend")
    }

    func testTickLabels() {
        XCTAssertEqual(SVG.tickLabel(1e-4), "1e-4")
        XCTAssertEqual(SVG.tickLabel(2.5e-4), "2.5e-4")
        XCTAssertEqual(SVG.tickLabel(0.001), "0.001")
        XCTAssertEqual(SVG.tickLabel(3e7), "3e7")
        XCTAssertEqual(SVG.tickLabel(1e5), "1e5")
        XCTAssertEqual(SVG.tickLabel(30000), "30000")
        XCTAssertEqual(SVG.tickLabel(0), "0")
        XCTAssertEqual(SVG.identifier("g", "a"), SVG.identifier("g", "a"))
        XCTAssertNotEqual(SVG.identifier("g", "a"), SVG.identifier("g", "b"))
    }

    func testMissingMetricsAreNotedNotPlotted() throws {
        let rows = Self.syntheticRows(includeEvaluations: false).filter { $0.site != "mlp_out" }
        let html = HTMLReport(rows: rows).render()
        XCTAssertEqual(charts(html).count, 25, "7 outlier + 1 CKA + 4 band + 3 movement + 6 weight + 4 histogram charts")
        XCTAssertTrue(html.contains("no &#39;cka&#39; rows for site &#39;mlp_out&#39;"))
        XCTAssertTrue(html.contains("max |x| of the MLP output (mlp_out) per layer: no &#39;max_abs&#39; rows"))
        XCTAssertTrue(html.contains("Perplexity on the evaluation tokens: no &#39;perplexity&#39; rows"))
        XCTAssertTrue(html.contains("LAMBADA accuracy: no"))
        XCTAssertTrue(html.contains("LAMBADA perplexity: no"))
        try assertBalancedTags(html)
    }

    func testWeightHistogramHeatmaps() throws {
        let html = HTMLReport(rows: Self.syntheticRows()).render()
        let histograms = charts(html).filter { $0.contains(": R = ") }
        XCTAssertEqual(histograms.count, 4, "attention.dense and dense_4h_to_h of layers 0 and 3")
        for layer in [0, 3] {
            for tensor in ["attention.dense.weight", "mlp.dense_4h_to_h.weight"] {
                XCTAssertTrue(histograms.contains { $0.contains(">layers.\(layer).\(tensor): R = ") }, "layer \(layer) \(tensor)")
            }
        }
        XCTAssertFalse(histograms.contains { $0.contains("layers.1.") || $0.contains("layers.2.") })
        let attention = try XCTUnwrap(histograms.first { $0.contains(">layers.0.attention.dense.weight: R = 0.05") })
        // 32 bins × 19 steps, one cell each, rows labelled by bin edges from hist_range (every 4th edge).
        XCTAssertEqual(attention.components(separatedBy: "<rect x=").count - 1, 32 * 19 + 1, "cells + colour bar")
        XCTAssertTrue(attention.contains(">weight value (32 bins)</text>"))
        for edge in [">-0.05</text>", ">-0.0375</text>", ">0</text>", ">0.025</text>", ">0.05</text>"] {
            XCTAssertTrue(attention.contains(edge), "missing bin edge \(edge)")
        }
        XCTAssertTrue(attention.contains("<title>w in [-0.05, -0.0469), step 0: "))
        XCTAssertTrue(attention.contains("<title>w in [0.0469, 0.05), step 143000: "))
        XCTAssertTrue(attention.contains("% outside</text>"), "late steps spill past R")
        // Log colour scale of fractions, with decade ticks; empty bins are white.
        XCTAssertTrue(attention.contains(">fraction of elements</text>") && attention.contains("(log; white = 0)"))
        // metrics.csv's hist_bin_NN are counts: the page says so next to the fractions it draws.
        XCTAssertTrue(html.contains("hist_bin_NN are element counts"))
        XCTAssertTrue(attention.contains(">1</text>") || attention.contains(">0.1</text>"))
        XCTAssertTrue(attention.contains(">0.001</text>"))
        XCTAssertTrue(attention.contains("fill=\"#fff\""))
        XCTAssertFalse(attention.contains("class=\"cell\""), "no printed values in thin cells")
        // The tooltip fractions of one step sum to at most 1.
        let step0 = try NSRegularExpression(pattern: "step 0: ([0-9.e-]+)</title>")
        let ns = attention as NSString
        let sum = step0.matches(in: attention, range: NSRange(location: 0, length: ns.length))
            .compactMap { Double(ns.substring(with: $0.range(at: 1))) }.reduce(0, +)
        XCTAssertEqual(sum, 1, accuracy: 1e-6)
        try assertBalancedTags(html)
    }

    func testOVRankChartAveragesHeads() throws {
        let rows = Self.syntheticRows(steps: [0, 16, 1000])
        let chart = try XCTUnwrap(charts(HTMLReport(rows: rows).render()).first { $0.contains("Effective rank of W_OV per head") })
        XCTAssertTrue(chart.contains(">layer 0</text>") && chart.contains(">layer 3</text>"))
        XCTAssertTrue(chart.contains("effective rank of W_O·W_V (mean over heads)"))
        // Layer 0 at step 0: heads 14, 14.25, 14.5, 14.75 → 14.375.
        XCTAssertTrue(chart.contains("<title>layer 0, step 0: 14.375</title>"))
        // Not confused with the dense weights' PER charts.
        let per = try XCTUnwrap(charts(HTMLReport(rows: rows).render()).first { $0.contains("PER of attention.dense.weight") })
        XCTAssertEqual(per.components(separatedBy: "<circle").count - 1, 4 * 3)
    }

    func testMissingHistogramsAndOVSpectraAreNoted() throws {
        let html = HTMLReport(rows: Self.syntheticRows(includeHistograms: false)).render()
        XCTAssertEqual(charts(html).count, 25, "8 outlier + 2 CKA + 4 band + 3 movement + 5 weight + 3 eval charts")
        XCTAssertTrue(html.contains("Weight histograms: no &#39;hist_bin_*&#39; rows"))
        XCTAssertTrue(html.contains("Effective rank of W_OV per head: no &#39;effective_rank&#39; rows"))
        // Histograms of one tensor missing: that one is noted, the others drawn.
        let partial = Self.syntheticRows().filter { !($0.site == "weights:gpt_neox.layers.3.attention.dense.weight" && $0.metric.hasPrefix("hist_")) }
        let partialHTML = HTMLReport(rows: partial).render()
        XCTAssertEqual(charts(partialHTML).filter { $0.contains(": R = ") }.count, 3)
        XCTAssertTrue(partialHTML.contains("Histogram of layers.3.attention.dense.weight: no"))
        try assertBalancedTags(html)
        try assertBalancedTags(partialHTML)
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

    /// A damaged run.json is refused naming the file and what is wrong (not Foundation's
    /// "NSCocoaErrorDomain Code=259"); a missing one is fine.
    func testGarbageRunJSONNamesTheFileAndTheProblem() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try MetricsCSV.write(Self.syntheticRows(layers: 2), to: directory.appendingPathComponent("metrics.csv"))
        let run = directory.appendingPathComponent("run.json")
        for (bytes, expected) in [(Data([0x7B, 0xFF, 0xFE, 0x7D]), "not UTF-8 text (first invalid byte at offset 1)"),
                                  (Data("{\"suite\": ".utf8), "not valid JSON: the JSON ends before it is complete"),
                                  (Data("{\"suite\" 5}".utf8), "not valid JSON: invalid JSON value at byte"),
                                  (Data("[1, 2]".utf8), "not a JSON object")] {
            try bytes.write(to: run)
            XCTAssertThrowsError(try HTMLReport.generate(results: directory)) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(run.path) && text.contains(expected), text)
                XCTAssertFalse(text.contains("NSCocoaErrorDomain"), text)
            }
        }
        try FileManager.default.removeItem(at: run)
        XCTAssertNoThrow(try HTMLReport.generate(results: directory))
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
        try AtomicFile.write(Self.sweepRunJSON, to: directory.appendingPathComponent("run.json"))
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
