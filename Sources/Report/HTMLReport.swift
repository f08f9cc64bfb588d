import Formats
import Foundation
import Results

/// `report.html`: a single self-contained page (inline CSS and SVG, no scripts, no network) that
/// summarises a sweep's `metrics.csv`.
///
/// At the top: a table of the run (suite, steps, data, tokens, probes, references) from
/// `run.json`, with the raw JSON collapsed below it, and a warning box listing checkpoints whose
/// weights are bit-identical to an earlier one (`checkpoint/identical_to_step` rows).
///
/// Plots, in a responsive grid (two per row on a ~1300 px window; each omitted, with a note
/// saying which rows were missing, when its metric is absent):
/// - max |x| per layer vs step of `resid_post`, `attn_out` and `mlp_out`; mean per-token norm and
///   kurtosis of `resid_post`;
/// - CKA heatmaps (layer × step) for `attn_out`, `mlp_out` (and `resid_post` when present),
///   spanning the full row when there are many steps;
/// - Frobenius norm and PER (effective rank / hidden size) vs step per layer for
///   `attention.dense.weight` and `mlp.dense_4h_to_h.weight`; the unembedding's (`embed_out`)
///   mean squared displacement from the previous checkpoint; the effective rank of each head's OV
///   circuit (`attention.w_ov.head<h>`), averaged over the heads of a layer;
/// - weight histograms (bin × step heatmaps) of `attention.dense.weight` and
///   `mlp.dense_4h_to_h.weight` in layer 0 and the last layer: colour = fraction of the tensor's
///   elements in the bin (log colour scale shared by all of them, white = none), rows labelled
///   with bin edges from `hist_range`;
/// - perplexity on the evaluation tokens, LAMBADA accuracy and LAMBADA perplexity, each on its
///   own axis (their perplexities differ by orders of magnitude).
/// Step axes are logarithmic with step 0 on its own tick (see `StepAxis`).
public struct HTMLReport: Sendable {
    public var rows: [MetricRow]
    /// The text of `run.json`: summarised in a table and shown verbatim (pretty-printed when it parses).
    public var runInfo: String?
    public var title: String
    /// The per-checkpoint files of the analysis probes (spectra, correlations, directions).
    public var analyses: AnalysisFiles

    /// Every step in the metrics, so all line charts share one step axis.
    var allSteps: [Int] { Set(rows.map(\.step)).sorted() }

    /// Heatmaps with more steps than this span the whole grid row (and are drawn twice as wide).
    static let wideHeatmapSteps = 12

    public init(rows: [MetricRow], runInfo: String? = nil, title: String = "NeoXProbe report", analyses: AnalysisFiles = AnalysisFiles()) {
        self.analyses = analyses
        self.rows = rows
        self.runInfo = runInfo
        self.title = title
    }

    /// Reads `results/metrics.csv` (+ `results/run.json` if present) and writes
    /// `results/report.html` (or `output`) atomically. Returns the path written.
    @discardableResult
    public static func generate(results: URL, output: URL? = nil) throws -> URL {
        let rows = try MetricsCSV.read(contentsOf: results.appendingPathComponent("metrics.csv"))
        let runURL = results.appendingPathComponent("run.json")
        let runInfo = FileManager.default.fileExists(atPath: runURL.path) ? try readRunInfo(runURL) : nil
        let destination = output ?? results.appendingPathComponent("report.html")
        let analyses = try AnalysisFiles.read(results: results)
        try AtomicFile.write(HTMLReport(rows: rows, runInfo: runInfo, analyses: analyses).render(), to: destination)
        return destination
    }

    /// `run.json` as text, or an error naming the file and what is wrong with it (not UTF-8 at
    /// byte N, not JSON at byte N, not an object): a sweep writes it, so garbage means the file was
    /// damaged or is not ours, and a report silently without it would hide that.
    static func readRunInfo(_ url: URL) throws -> String {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ResultsError(.io, "cannot read run.json: \(error.localizedDescription)", path: url.path)
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            let offset = UTF8Validation.firstInvalidOffset(Array(data)) ?? 0
            throw ResultsError(.malformed, "run.json is not UTF-8 text (first invalid byte at offset \(offset)); "
                + "it is written by neoxprobe sweep: remove or regenerate it", path: url.path)
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ResultsError(.malformed, "run.json is not valid JSON: \(JSONParsing.describe(error, data: data, offset: 0))", path: url.path)
        }
        guard object is [String: Any] else { throw ResultsError(.malformed, "run.json is not a JSON object", path: url.path) }
        return text
    }

    /// The page. NaN and ±inf values cannot be drawn: they are left out of every chart, and the
    /// page says how many there are (metrics.csv keeps them).
    public func render() -> String {
        var finite = self
        finite.rows = rows.filter(\.value.isFinite)
        return finite.renderFinite(total: rows.count)
    }

    private func renderFinite(total: Int) -> String {
        var body = ""
        let steps = Set(rows.map(\.step)).sorted()
        body += "<header><h1>\(SVG.escape(title))</h1><p>\(total) metric rows, \(steps.count) checkpoints"
        if let first = steps.first, let last = steps.last { body += " (steps \(first)–\(last))" }
        body += ". Step axes are logarithmic; step 0 is drawn on its own tick left of the axis break (//).</p></header>"
        if total > rows.count {
            body += "<div class=\"warning\">\(total - rows.count) metric values are not finite (NaN or ±inf): "
                + "they are left out of the charts below; metrics.csv has them.</div>"
        }
        body += partialSweepWarning()
        body += identicalCheckpointsWarning()
        body += runTable()

        let weight = { (suffix: String) in { (site: String) in site.hasPrefix("weights:") && site.hasSuffix(suffix) } }
        body += section("Activation outliers", [
            layerChart(title: "max |x| of the residual stream (resid_post) per layer", yTitle: "max |x|",
                       metric: MetricName.maxAbs, preferLog: true) { $0 == "resid_post" },
            layerChart(title: "Mean per-token L2 norm of resid_post", yTitle: "mean ‖x‖₂",
                       metric: MetricName.meanNorm, preferLog: true) { $0 == "resid_post" },
            layerChart(title: "max |x| of the attention output (attn_out) per layer", yTitle: "max |x|",
                       metric: MetricName.maxAbs, preferLog: true) { $0 == "attn_out" },
            layerChart(title: "max |x| of the MLP output (mlp_out) per layer", yTitle: "max |x|",
                       metric: MetricName.maxAbs, preferLog: true) { $0 == "mlp_out" },
            layerChart(title: "Kurtosis of resid_post (all elements, Pearson)", yTitle: "kurtosis",
                       metric: MetricName.kurtosis, preferLog: true, reference: (3, "normal = 3")) { $0 == "resid_post" },
        ] + outlierAdditions())
        var similarity = [heatmap(site: "attn_out"), heatmap(site: "mlp_out")]
        if rows.contains(where: { $0.site == "resid_post" && $0.metric == MetricName.cka }) { similarity.append(heatmap(site: "resid_post")) }
        body += section("Representation similarity to the reference checkpoint (linear CKA)", similarity)
        body += percentileBandSection()
        body += section("Weights writing to the residual stream", [
            layerChart(title: "Frobenius norm of attention.dense.weight", yTitle: "Frobenius norm ‖W‖", metric: MetricName.frobeniusNorm,
                       preferLog: false, site: weight(".attention.dense.weight")),
            layerChart(title: "Frobenius norm of mlp.dense_4h_to_h.weight", yTitle: "Frobenius norm ‖W‖", metric: MetricName.frobeniusNorm,
                       preferLog: false, site: weight(".mlp.dense_4h_to_h.weight")),
            rankChart(tensor: "attention.dense.weight"),
            rankChart(tensor: "mlp.dense_4h_to_h.weight"),
            ovRankChart(),
            msdChart(),
        ])
        body += movementSection()
        body += section("Weight histograms of the first and last layer (fixed bins on [−R, R], R = max |w| of the reference checkpoint; "
                            + "metrics.csv's hist_bin_NN are element counts, drawn here as fractions of the tensor's elements)",
                        weightHistograms())
        body += section("Evaluations", [evaluationPerplexityChart(), lambadaAccuracyChart(), lambadaPerplexityChart()])
        if rows.contains(where: { $0.site == Self.gradientLossSite }) {
            body += section("Gradients of the loss on the evaluation tokens", gradientPlots())
        }
        body += generationSection()
        body += analysisSections()
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(SVG.escape(title))</title>
        <style>\(Self.style)</style></head>
        <body>\(body)<footer>Generated by neoxprobe report from metrics.csv. Hover a point or cell for its exact value.</footer></body></html>

        """
    }

    static let style = """
    body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:20px 24px;color:#222;background:#fff}
    h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
    header p,footer{color:#555;font-size:14px}header p{margin:0 0 12px}footer{margin-top:32px}
    .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(600px,100%),1fr));gap:16px;align-items:start}
    .grid>.wide{grid-column:1/-1}
    figure{margin:0;border:1px solid #e4e4e4;border-radius:6px;padding:6px;background:#fcfcfc;min-width:0}
    .missing{color:#8a5a00;background:#fff7e0;border:1px solid #f0dca0;border-radius:6px;padding:8px 12px;font-size:14px;margin:0}
    .warning{color:#7a1d12;background:#fdecea;border:1px solid #f1b0a7;border-left:5px solid #d93025;border-radius:6px;padding:10px 14px;margin:0 0 14px;font-size:14px;max-width:1000px}
    figcaption.downloads{font-size:12px;color:#666;margin:2px 4px 0}figcaption.downloads a{color:#1a5fb4}
    table.directions{border-collapse:collapse;font-size:12.5px;width:100%}table.directions th,table.directions td{border-bottom:1px solid #e6e6e6;padding:2px 6px;text-align:left;vertical-align:top}
    table.directions td.tokens{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;white-space:pre-wrap}table.directions td.num{text-align:right;white-space:nowrap}
    .images{display:flex;flex-wrap:wrap;gap:10px}.images figure{flex:0 0 auto;width:420px}
    .warning strong{display:block;font-size:15px;margin-bottom:4px}.warning ul{margin:4px 0 0;padding-left:20px}
    table.run{border-collapse:collapse;font-size:14px;margin:0 0 8px}
    table.run th{text-align:left;font-weight:600;color:#555;padding:3px 18px 3px 0;vertical-align:top;white-space:nowrap}
    table.run td{padding:3px 0;vertical-align:top}table.run code{font-size:13px;background:#f3f3f3;padding:0 3px;border-radius:3px}
    details{font-size:14px;margin:4px 0 0}summary{cursor:pointer;color:#555}
    pre{background:#f6f6f6;padding:10px;font-size:12px;max-height:320px;overflow:auto}
    svg.chart{display:block;width:100%;height:auto}svg.chart text{font-size:12px;fill:#333}
    svg.chart .chart-title{font-size:14px;font-weight:600;fill:#111}
    svg.chart .axis-title{font-size:12.5px;fill:#444}
    svg.chart .axis line,svg.chart .axis-line{stroke:#555;stroke-width:1}
    svg.chart .axis line.grid{stroke:#e6e6e6}
    svg.chart .axis line.break{stroke:#555;stroke-width:1.2}
    svg.chart rect{shape-rendering:crispEdges}svg.chart rect.empty{fill:#eee;stroke:#fff}
    svg.chart text.cell{font-size:11px}
    svg.chart .legend text{font-size:12px}
    """

    // MARK: - Run summary

    /// A red box listing checkpoints whose weights equal an earlier checkpoint's (their points
    /// duplicate that step's), from the `checkpoint/identical_to_step` rows and run.json's
    /// `identical_checkpoints`, or nothing when there are none.
    private func identicalCheckpointsWarning() -> String {
        var sameAs: [Int: Int] = [:]
        for row in rows where row.site == SweepNames.checkpointSite && row.metric == SweepNames.identicalToStep && row.value.isFinite {
            if let step = Int(exactly: row.value) { sameAs[row.step] = step }
        }
        // run.json lists them too (metrics.csv may have been filtered or trimmed).
        if let runInfo, let object = (try? JSONSerialization.jsonObject(with: Data(runInfo.utf8))) as? [String: Any],
           let listed = object["identical_checkpoints"] as? [[String: Any]] {
            for pair in listed {
                if let step = (pair["step"] as? NSNumber)?.intValue, let earlier = (pair["identical_to_step"] as? NSNumber)?.intValue,
                   sameAs[step] == nil {
                    sameAs[step] = earlier
                }
            }
        }
        let pairs = sameAs.keys.sorted().map { (step: $0, sameAs: sameAs[$0]!) }
        guard !pairs.isEmpty else { return "" }
        var html = "<div class=\"warning\" role=\"alert\"><strong>⚠ \(pairs.count) checkpoint\(pairs.count == 1 ? " has" : "s have") "
        html += "weights bit-identical to an earlier checkpoint</strong>Their points repeat the earlier step's values; "
        html += "the suite may contain a copied or mislabelled checkpoint.<ul>"
        for pair in pairs { html += "<li>step \(pair.step) is identical to step \(pair.sameAs)</li>" }
        return html + "</ul></div>"
    }

    /// The run at a glance from `run.json` (suite, steps, data, tokens, probes, references), with
    /// the full JSON collapsed underneath. Unknown layouts fall back to their top-level scalars.
    private func runTable() -> String {
        guard let runInfo else { return "" }
        let raw = "<details><summary>run.json</summary><pre>\(SVG.escape(prettyJSON(runInfo)))</pre></details>"
        guard let object = (try? JSONSerialization.jsonObject(with: Data(runInfo.utf8))) as? [String: Any] else { return raw }
        func text(_ value: Any?) -> String? {
            switch value {
            case let string as String: return string
            case let number as NSNumber: return number.stringValue
            default: return nil
            }
        }
        var entries: [(String, String)] = []
        let suite = object["suite"] as? [String: Any]
        let options = object["options"] as? [String: Any]
        if let suite {
            var line = text(suite["root"]) ?? text(suite["spec"]) ?? "?"
            if let kind = text(suite["kind"]) { line += " (\(kind))" }
            entries.append(("Suite", line))
            if let selected = suite["steps_selected"] as? [Any] {
                var line = "\(selected.count): " + selected.compactMap(text).joined(separator: ", ")
                if let available = suite["steps_available"] as? [Any], available.count != selected.count {
                    line += " (of \(available.count) available)"
                }
                entries.append(("Steps", line))
            }
        }
        if let data = object["data"] as? [String: Any] {
            if let summary = text(data["summary"]) { entries.append(("Data", summary)) }
            if let tokens = data["tokens"] as? [String: Any], let count = text(tokens["count"]) {
                var line = "\(count) tokens"
                if let sequences = text(tokens["sequences"]), let length = text(tokens["sequence_length"]) {
                    line += " (\(sequences) sequences × \(length))"
                }
                if let hash = text(tokens["hash"]) { line += ", hash \(hash)" }
                entries.append(("Tokens", line))
            }
        }
        if let probes = object["probes"] as? [Any] { entries.append(("Probes", probes.compactMap(text).joined(separator: ", "))) }
        var references: [String] = []
        if let step = text(object["reference_step"]) { references.append("CKA: step \(step)") }
        if let step = text(object["weights_reference_step"]) { references.append("weight distance: step \(step)") }
        if !references.isEmpty { entries.append(("Reference", references.joined(separator: "; "))) }
        if let limit = text(options?["lambada_limit"]), let probes = object["probes"] as? [String], probes.contains("lambada") {
            var line = limit == "all" ? "all examples" : "first \(limit) examples"
            if let path = text(options?["lambada_data"]) { line += " of \(path)" }
            entries.append(("LAMBADA", line))
        }
        if let identical = object["identical_checkpoints"] as? [[String: Any]] {
            entries.append(("Identical checkpoints", identical.isEmpty ? "none" : identical.compactMap { pair in
                text(pair["step"]).map { "step \($0) = step \(text(pair["identical_to_step"]) ?? "?")" }
            }.joined(separator: ", ")))
        }
        var tool: [String] = []
        if let name = text(object["tool"]) { tool.append(name + (text(object["version"]).map { " " + $0 } ?? "")) }
        if let status = text(object["status"]) { tool.append("status \(status)") }
        if let fingerprint = text(object["fingerprint"]) { tool.append("fingerprint \(fingerprint)") }
        if !tool.isEmpty { entries.append(("Run", tool.joined(separator: ", "))) }
        if entries.isEmpty {
            entries = object.keys.sorted().compactMap { key in text(object[key]).map { (key, $0) } }
        }
        guard !entries.isEmpty else { return raw }
        var html = "<table class=\"run\">"
        for (name, value) in entries { html += "<tr><th>\(SVG.escape(name))</th><td>\(SVG.escape(value))</td></tr>" }
        return html + "</table>" + raw
    }

    // MARK: - Plot builders

    /// An SVG figure (optionally spanning the grid row), or a note saying which rows were missing.
    /// A chart (drawn, with links to download it as SVG and its data as CSV), a block of HTML
    /// (a table, with its CSV), or a note saying which rows were missing.
    enum Plot { case chart(any ReportChart, wide: Bool = false), html(String, csv: String, name: String, wide: Bool = true), missing(String) }

    func section(_ heading: String, _ plots: [Plot]) -> String {
        var html = "<section id=\"\(Self.fileName(heading))\"><h2>\(SVG.escape(heading))</h2><div class=\"grid\">"
        for plot in plots {
            switch plot {
            case .chart(let chart, let wide):
                let svg = chart.render()
                let name = Self.fileName(chart.title)
                html += wide ? "<figure class=\"wide\">" : "<figure>"
                html += svg + "<figcaption class=\"downloads\">Download: " + Self.downloadLink(svg, type: "image/svg+xml", file: name + ".svg", text: "chart (SVG)")
                if let file = chart.dataFile {
                    html += " · <a href=\"\(SVG.escape(file))\">data (CSV, \(SVG.escape(file)))</a></figcaption></figure>"
                } else {
                    html += " · " + Self.downloadLink(chart.csv, type: "text/csv", file: name + ".csv", text: "data (CSV)") + "</figcaption></figure>"
                }
            case .html(let block, let csv, let name, let wide):
                html += wide ? "<figure class=\"wide\">" : "<figure>"
                html += block + "<figcaption class=\"downloads\">Download: "
                html += Self.downloadLink(csv, type: "text/csv", file: Self.fileName(name) + ".csv", text: "table (CSV)") + "</figcaption></figure>"
            case .missing(let note): html += "<p class=\"missing\">\(SVG.escape(note))</p>"
            }
        }
        return html + "</div></section>"
    }

    /// A `data:` URL link, so the page stays one self-contained file.
    static func downloadLink(_ content: String, type: String, file: String, text: String) -> String {
        "<a download=\"\(SVG.escape(file))\" href=\"data:\(type);charset=utf-8;base64,\(Data(content.utf8).base64EncodedString())\">\(SVG.escape(text))</a>"
    }

    /// A download's file name from a chart title: lowercase letters, digits and dashes.
    static func fileName(_ title: String) -> String {
        var name = ""
        for scalar in title.lowercased().unicodeScalars {
            if (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9") { name.unicodeScalars.append(scalar) } else if !name.hasSuffix("-") { name += "-" }
        }
        let trimmed = String(name.trimmingCharacters(in: CharacterSet(charactersIn: "-")).prefix(80))
        return trimmed.isEmpty ? "chart" : trimmed
    }

    func layerSeries(metric: String, site: (String) -> Bool) -> [Series] {
        var byLayer: [Int: [(step: Int, value: Double)]] = [:]
        for row in rows where row.metric == metric && site(row.site) {
            guard let layer = row.layer else { continue }
            byLayer[layer, default: []].append((row.step, row.value))
        }
        return byLayer.keys.sorted().map { Series(label: "layer \($0)", points: byLayer[$0]!) }
    }

    func layerChart(title: String, yTitle: String, metric: String, preferLog: Bool, reference: (value: Double, label: String)? = nil,
                    site: (String) -> Bool) -> Plot {
        let series = layerSeries(metric: metric, site: site)
        guard !series.isEmpty else { return .missing("\(title): no '\(metric)' rows for this site in metrics.csv; plot omitted.") }
        return .chart(LineChart(title: title, yTitle: yTitle, series: series, ordered: true, preferLogY: preferLog,
                                axisSteps: allSteps, reference: reference))
    }

    /// Proportional effective rank (PER = effective rank / hidden size) per layer, as the literature's
    /// literature plots it: comparable across model sizes, unlike the raw effective rank.
    private func rankChart(tensor: String) -> Plot {
        layerChart(title: "PER of \(tensor)", yTitle: "PER (effective rank / hidden size)", metric: MetricName.per,
                   preferLog: false, site: { $0.hasPrefix("weights:") && $0.hasSuffix("." + tensor) })
    }

    /// Effective rank of W_OV = W_O·W_V per head (sites `weights:…attention.w_ov.head<h>`),
    /// averaged over the heads of each layer; at most the head dimension.
    private func ovRankChart() -> Plot {
        var byLayer: [Int: [Int: [Double]]] = [:]
        var heads: [Int: Set<String>] = [:]
        for row in rows where row.metric == MetricName.effectiveRank && row.site.hasPrefix("weights:")
            && row.site.contains(".attention.w_ov.head") && row.value.isFinite {
            guard let layer = row.layer else { continue }
            byLayer[layer, default: [:]][row.step, default: []].append(row.value)
            heads[layer, default: []].insert(row.site)
        }
        let title = "Effective rank of W_OV per head"
        guard !byLayer.isEmpty else {
            return .missing("\(title): no 'effective_rank' rows for sites 'weights:gpt_neox.layers.<l>.attention.w_ov.head<h>' in metrics.csv; plot omitted.")
        }
        let counts = Set(heads.values.map(\.count))
        let headText = counts.count == 1 ? "\(counts.first!) heads" : "heads"
        let series = byLayer.keys.sorted().map { layer in
            Series(label: "layer \(layer)", points: byLayer[layer]!.keys.sorted().map { step in
                let values = byLayer[layer]![step]!
                return (step: step, value: values.reduce(0, +) / Double(values.count))
            })
        }
        return .chart(LineChart(title: "\(title) (mean of \(headText) per layer)", yTitle: "effective rank of W_O·W_V (mean over heads)",
                                 series: series, ordered: true, preferLogY: false, axisSteps: allSteps))
    }

    /// Tensors whose histograms are plotted, for layer 0 and the last layer.
    static let histogramTensors = ["attention.dense.weight", "mlp.dense_4h_to_h.weight"]

    /// Bin × step heatmaps of the fixed-bin weight histograms (`hist_bin_<i>`, `hist_range`,
    /// `hist_underflow`, `hist_overflow`). Colour is the fraction of the tensor's elements in a bin
    /// (counts / all elements, under- and overflow included) on a log scale shared by every
    /// histogram on the page, white where a bin is empty.
    private func weightHistograms() -> [Plot] {
        struct Histogram { var bins: [Int: [Int: Double]] = [:], range: [Int: Double] = [:], outside: [Int: Double] = [:] }
        var histograms: [String: Histogram] = [:]
        let binPrefix = "hist_bin_"
        for row in rows where row.site.hasPrefix("weights:") && row.metric.hasPrefix("hist_") && row.value.isFinite {
            if row.metric.hasPrefix(binPrefix), let index = Int(row.metric.dropFirst(binPrefix.count)) {
                histograms[row.site, default: Histogram()].bins[index, default: [:]][row.step] = row.value
            } else if row.metric == MetricName.histRange {
                histograms[row.site, default: Histogram()].range[row.step] = row.value
            } else if row.metric == MetricName.histUnderflow || row.metric == MetricName.histOverflow {
                histograms[row.site, default: Histogram()].outside[row.step, default: 0] += row.value
            }
        }
        let layers = Set(rows.filter { $0.site.hasPrefix("weights:gpt_neox.layers.") }.compactMap(\.layer))
        guard let last = layers.max(), histograms.values.contains(where: { !$0.bins.isEmpty }) else {
            return [.missing("Weight histograms: no 'hist_bin_*' rows for sites 'weights:gpt_neox.layers.<l>.…' in metrics.csv; plots omitted.")]
        }
        let sites = Set([layers.min() ?? 0, last]).sorted().flatMap { layer in
            Self.histogramTensors.map { "weights:gpt_neox.layers.\(layer).\($0)" }
        }
        // Fractions of all elements, per site.
        var fractions: [String: [Int: [Int: Double]]] = [:]
        var outsideFraction: [String: Double] = [:]
        for site in sites {
            guard let histogram = histograms[site], !histogram.bins.isEmpty else { continue }
            var totals: [Int: Double] = histogram.outside
            for (_, bySteps) in histogram.bins { for (step, count) in bySteps { totals[step, default: 0] += count } }
            var cells: [Int: [Int: Double]] = [:]
            for (bin, bySteps) in histogram.bins {
                for (step, count) in bySteps where (totals[step] ?? 0) > 0 { cells[bin, default: [:]][step] = count / totals[step]! }
            }
            fractions[site] = cells
            outsideFraction[site] = histogram.outside.compactMap { step, count in totals[step].map { count / $0 } }.max() ?? 0
        }
        let positive = fractions.values.flatMap { $0.values.flatMap(\.values) }.filter { $0 > 0 }
        let high = pow(10, ceil(log10(positive.max() ?? 1)))
        let low = max(pow(10, floor(log10(positive.min() ?? 1e-6))), high / 1e6)
        let colour = HeatmapColour.logarithmic(low: low, high: low < high ? high : low * 10, label: "fraction of elements")
        return sites.map { site in
            let tensor = String(site.dropFirst("weights:gpt_neox.".count))
            guard let cells = fractions[site], let histogram = histograms[site] else {
                return .missing("Histogram of \(tensor): no 'hist_bin_*' rows for site '\(site)' in metrics.csv; plot omitted.")
            }
            let binCount = (cells.keys.max() ?? 0) + 1
            let range = histogram.range.keys.max().map { histogram.range[$0]! } ?? 1
            let edge = { (index: Int) in -range + 2 * range * Double(index) / Double(binCount) }
            let label = { (value: Double) in value == 0 ? "0" : String(format: "%.3g", value) }
            let every = max(1, binCount / 8)
            let ticks = stride(from: 0, through: binCount, by: every).map { (position: Double($0), label: label(edge($0))) }
            // Title kept short enough for a 600 px chart: the section heading says what R is.
            var title = "\(tensor): R = \(String(format: "%.3g", range))"
            if let outside = outsideFraction[site], outside > 0 { title += String(format: ", ≤ %.2g%% outside", 100 * outside) }
            let steps = Set(cells.values.flatMap(\.keys)).count
            let wide = steps > Self.wideHeatmapSteps
            let heatmap = Heatmap(title: title, cells: cells, width: wide ? 1232 : 600, rowTitle: "weight value (\(binCount) bins)",
                                  rowName: { "w in [\(label(edge($0))), \(label(edge($0 + 1))))" }, rowEdgeTicks: ticks,
                                  colour: colour, left: 96)
            return .chart(heatmap, wide: wide)
        }
    }

    /// Mean squared displacement of each `msd` tensor (the unembedding by default) from the
    /// checkpoint before it.
    private func msdChart() -> Plot {
        var byTensor: [String: [(step: Int, value: Double)]] = [:]
        for row in rows where row.metric == MetricName.msd && row.site.hasPrefix("weights:") {
            byTensor[String(row.site.dropFirst("weights:".count)), default: []].append((row.step, row.value))
        }
        guard !byTensor.isEmpty else {
            return .missing("Unembedding movement: no 'msd' rows (weights:embed_out.weight) in metrics.csv; plot omitted.")
        }
        let names = byTensor.keys.sorted()
        let title = names == ["embed_out.weight"] ? "Unembedding (embed_out.weight) movement per checkpoint"
                                                   : "Weight movement per checkpoint"
        let series = names.map { Series(label: $0, points: byTensor[$0]!) }
        return .chart(LineChart(title: title, yTitle: "MSD from previous checkpoint", series: series, ordered: false,
                                 preferLogY: true, axisSteps: allSteps))
    }

    private func heatmap(site: String) -> Plot {
        var cells: [Int: [Int: Double]] = [:]
        for row in rows where row.site == site && row.metric == MetricName.cka {
            guard let layer = row.layer else { continue }
            cells[layer, default: [:]][row.step] = row.value
        }
        let title = "CKA of \(site) with the reference checkpoint"
        guard !cells.isEmpty else { return .missing("\(title): no 'cka' rows for site '\(site)' in metrics.csv; plot omitted.") }
        let stepCount = Set(cells.values.flatMap(\.keys)).count
        guard stepCount > Self.wideHeatmapSteps else { return .chart(Heatmap(title: title, cells: cells)) }
        return .chart(Heatmap(title: title, cells: cells, width: 1232), wide: true)
    }

    /// The `gradients` probe's model-wide site (its loss) and per-tensor site prefix.
    static let gradientLossSite = "gradients"

    /// Loss, gradient norms of the residual-writing matrices, their agreement with the previous
    /// checkpoint's gradient, their PER, and the residual stream's gradient, per layer.
    private func gradientPlots() -> [Plot] {
        let gradient = { (suffix: String) in { (site: String) in site.hasPrefix("grad:") && site.hasSuffix(suffix) } }
        let loss = modelWidePoints(site: Self.gradientLossSite, metric: "loss")
        var plots: [Plot] = [.chart(LineChart(title: "Loss the gradients are of (mean next-token cross-entropy)", yTitle: "loss",
                                               series: [Series(label: "loss", points: loss)], ordered: false, preferLogY: false,
                                               axisSteps: allSteps))]
        for tensor in ["mlp.dense_4h_to_h.weight", "attention.dense.weight"] {
            plots.append(layerChart(title: "Gradient Frobenius norm of \(tensor)", yTitle: "‖∂L/∂W‖", metric: MetricName.frobeniusNorm,
                                    preferLog: true, site: gradient("." + tensor)))
        }
        plots.append(layerChart(title: "Cosine of the mlp.dense_4h_to_h gradient with the previous checkpoint's", yTitle: "cosine",
                                metric: "cosine_previous", preferLog: false, site: gradient(".mlp.dense_4h_to_h.weight")))
        plots.append(layerChart(title: "PER of the mlp.dense_4h_to_h gradient", yTitle: "PER (effective rank / hidden size)",
                                metric: MetricName.per, preferLog: false, site: gradient(".mlp.dense_4h_to_h.weight")))
        plots.append(layerChart(title: "max |∂L/∂x| of the residual stream (resid_post) per layer", yTitle: "max |g|",
                                metric: MetricName.maxAbs, preferLog: true) { $0 == "grad:resid_post" })
        return plots
    }

    func modelWidePoints(site: String, metric: String) -> [(step: Int, value: Double)] {
        rows.filter { $0.site == site && $0.metric == metric && $0.layer == nil }.map { (step: $0.step, value: $0.value) }
    }

    /// Perplexity of every model-wide site except LAMBADA (normally just `eval_tokens`).
    private func evaluationPerplexityChart() -> Plot {
        var bySite: [String: [(step: Int, value: Double)]] = [:]
        for row in rows where row.metric == MetricName.perplexity && row.layer == nil && row.site != SweepNames.lambadaSite {
            bySite[row.site, default: []].append((row.step, row.value))
        }
        guard !bySite.isEmpty else {
            return .missing("Perplexity on the evaluation tokens: no 'perplexity' rows for site 'eval_tokens' in metrics.csv; plot omitted.")
        }
        let sites = bySite.keys.sorted()
        var title = "Perplexity on the evaluation tokens"
        if sites == [SweepNames.evaluationTokensSite],
           let tokens = modelWidePoints(site: SweepNames.evaluationTokensSite, metric: MetricName.tokenCount).last?.value {
            title += " (\(String(format: "%.0f", tokens)) scored tokens)"
        }
        let series = sites.map { Series(label: $0, points: bySite[$0]!) }
        return .chart(LineChart(title: title, yTitle: "perplexity", series: series, ordered: false, preferLogY: true,
                                 axisSteps: allSteps))
    }

    private func lambadaTitle(_ base: String) -> String {
        guard let count = modelWidePoints(site: SweepNames.lambadaSite, metric: SweepNames.exampleCount).last?.value else { return base }
        return base + " (\(String(format: "%.0f", count)) examples)"
    }

    private func lambadaAccuracyChart() -> Plot {
        let points = modelWidePoints(site: SweepNames.lambadaSite, metric: MetricName.acc)
        guard !points.isEmpty else { return .missing("LAMBADA accuracy: no 'acc' rows for site 'lambada' in metrics.csv; plot omitted.") }
        return .chart(LineChart(title: lambadaTitle("LAMBADA accuracy"), yTitle: "accuracy (greedy, all target tokens)",
                                 series: [Series(label: "lambada", points: points)], ordered: false, preferLogY: false,
                                 includeZero: true, axisSteps: allSteps))
    }

    private func lambadaPerplexityChart() -> Plot {
        let points = modelWidePoints(site: SweepNames.lambadaSite, metric: MetricName.perplexity)
        guard !points.isEmpty else {
            return .missing("LAMBADA perplexity: no 'perplexity' rows for site 'lambada' in metrics.csv; plot omitted.")
        }
        return .chart(LineChart(title: lambadaTitle("LAMBADA perplexity"), yTitle: "perplexity of the target",
                                 series: [Series(label: "lambada", points: points)], ordered: false, preferLogY: true,
                                 axisSteps: allSteps))
    }

    private func prettyJSON(_ text: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]),
              let pretty = String(data: data, encoding: .utf8) else { return text }
        return pretty
    }
}

// MARK: - Generation probes

extension HTMLReport {
    /// Memorization and LAMBADA-generation charts; nothing when the sweep ran neither probe.
    fileprivate func generationSection() -> String {
        let memorization = rows.contains { $0.site == SweepNames.memorizationSite }
        let lambada = rows.contains { $0.site == SweepNames.lambadaGenerationSite }
        guard memorization || lambada else { return "" }
        var plots: [Plot] = []
        if memorization {
            let count = modelWidePoints(site: SweepNames.memorizationSite, metric: MetricName.rowCount).last.map { " (\(Int($0.value)) rows)" } ?? ""
            plots.append(.chart(LineChart(
                title: "Memorization of training rows" + count, yTitle: "fraction",
                series: [Series(label: "mean score", points: modelWidePoints(site: SweepNames.memorizationSite, metric: MetricName.memorizationScore)),
                         Series(label: "fully memorized", points: modelWidePoints(site: SweepNames.memorizationSite, metric: MetricName.memorizedFraction))],
                ordered: false, preferLogY: false, includeZero: true, axisSteps: allSteps)))
        }
        if lambada {
            let site = SweepNames.lambadaGenerationSite
            let count = modelWidePoints(site: site, metric: SweepNames.exampleCount).last.map { " (\(Int($0.value)) examples)" } ?? ""
            let ks = Set(rows.filter { $0.site == site && $0.metric.hasPrefix("unmask_agreement_k") }
                .compactMap { Int($0.metric.dropFirst("unmask_agreement_k".count)) }).sorted()
            plots.append(.chart(LineChart(
                title: "LAMBADA causal unmasking: agreement with the original" + count, yTitle: "token agreement",
                series: ks.map { Series(label: "k = \($0)", points: modelWidePoints(site: site, metric: MetricName.unmaskAgreement($0))) },
                ordered: true, preferLogY: false, includeZero: true, axisSteps: allSteps)))
            plots.append(.chart(LineChart(
                title: "LAMBADA: perplexity of the model's own generations" + count, yTitle: "perplexity",
                series: [Series(label: "generation", points: modelWidePoints(site: site, metric: MetricName.generationPerplexity))]
                    + ks.map { Series(label: "unmask k = \($0)", points: modelWidePoints(site: site, metric: MetricName.unmaskPerplexity($0))) },
                ordered: false, preferLogY: true, axisSteps: allSteps)))
        }
        return section("Generation (greedy, KV cache)", plots)
    }
}
