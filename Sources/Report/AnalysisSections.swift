import Foundation
import Results

/// The report's sections for the analysis probes and the training-dynamics summaries of issue 13:
/// partial-sweep banner, outlier dimensions, percentile bands across layers, distance from
/// initialisation and per-step movement, activation histograms, embedding structure, log-log
/// spectra, SVD direction strings and weight distribution shape.
extension HTMLReport {
    // MARK: banner

    /// A red box when the sweep is unfinished (run.json `status` other than `complete`) or some
    /// selected checkpoints have no rows yet.
    func partialSweepWarning() -> String {
        guard let runInfo, let object = (try? JSONSerialization.jsonObject(with: Data(runInfo.utf8))) as? [String: Any] else { return "" }
        let status = object["status"] as? String
        let selected = ((object["suite"] as? [String: Any])?["steps_selected"] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } ?? []
        let present = Set(rows.map(\.step))
        let missing = selected.filter { !present.contains($0) }
        guard (status != nil && status != "complete") || !missing.isEmpty else { return "" }
        var html = "<div class=\"warning\" role=\"alert\"><strong>⚠ Partial sweep: these results are incomplete</strong>"
        if let status, status != "complete" { html += "run.json status is “\(SVG.escape(status))”. " }
        if !selected.isEmpty {
            html += "\(selected.count - missing.count) of \(selected.count) selected checkpoints have results"
            if !missing.isEmpty { html += " (none yet for step\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")))" }
            html += ". "
        }
        return html + "Every chart shows only the checkpoints measured so far; rerun the sweep to resume it.</div>"
    }

    // MARK: outliers

    /// resid_pre, the outlier dimension per layer, and which dimensions are among the top-K.
    func outlierAdditions() -> [Plot] {
        var plots = [
            layerChart(title: "max |x| of the block input (resid_pre) per layer", yTitle: "max |x|", metric: MetricName.maxAbs,
                       preferLog: true) { $0 == "resid_pre" },
            layerChart(title: "Outlier dimension of resid_post (argmax_dim) per layer", yTitle: "dimension index of max |x|",
                       metric: MetricName.argmaxDim, preferLog: false) { $0 == "resid_post" },
        ]
        var layersWith: [Int: [Int: Set<Int>]] = [:]
        var layers: Set<Int> = []
        var topK = 0
        for row in rows where row.site == "resid_post" && row.metric.hasPrefix("top") && row.metric.hasSuffix("_dim") {
            guard let layer = row.layer, let rank = Int(row.metric.dropFirst(3).dropLast(4)), let dim = Int(exactly: row.value) else { continue }
            topK = max(topK, rank)
            layers.insert(layer)
            layersWith[dim, default: [:]][row.step, default: []].insert(layer)
        }
        if layersWith.isEmpty {
            plots.append(.missing("Top-K outlier dimensions: no 'top<k>_dim' rows for site 'resid_post' in metrics.csv; plot omitted."))
        } else {
            let cells = layersWith.mapValues { $0.mapValues { Double($0.count) / Double(layers.count) } }
            plots.append(.chart(Heatmap(title: "Top-\(topK) outlier dimensions of resid_post: share of the \(layers.count) layers",
                                        cells: cells, rowTitle: "dimension", rowName: { "dimension \($0)" },
                                        colour: .unit(label: "fraction of layers"))))
        }
        return plots
    }

    // MARK: percentile bands

    /// CKA and PER as 10/25/50/75/90 % bands across layers (and heads) per checkpoint.
    func percentileBandSection() -> String {
        func values(metric: String, _ site: (String) -> Bool) -> [Int: [Double]] {
            var byStep: [Int: [Double]] = [:]
            for row in rows where row.metric == metric && row.layer != nil && site(row.site) { byStep[row.step, default: []].append(row.value) }
            return byStep
        }
        var plots: [Plot] = []
        for site in ["attn_out", "mlp_out", "resid_post"] {
            let v = values(metric: MetricName.cka) { $0 == site }
            if !v.isEmpty {
                plots.append(.chart(BandChart(title: "CKA bands: \(site) vs the reference, across layers", yTitle: "linear CKA",
                                              values: v, axisSteps: allSteps)))
            }
        }
        for (tensor, label) in [(".attention.dense.weight", "attention.dense.weight"), (".mlp.dense_4h_to_h.weight", "mlp.dense_4h_to_h.weight"),
                                (".attention.w_ov.head", "W_OV of every head")] {
            let v = values(metric: MetricName.per) { $0.hasPrefix("weights:") && $0.contains(tensor) }
            if !v.isEmpty {
                plots.append(.chart(BandChart(title: "PER bands: \(label), across layers", yTitle: "PER (effective rank / hidden size)",
                                              values: v, axisSteps: allSteps)))
            }
        }
        guard !plots.isEmpty else { return "" }
        return section("Percentile bands across layers (10/25/50/75/90 %, as “Tending Towards Stability” Fig. 1)", plots)
    }

    // MARK: movement

    /// Distance of the weights from the reference (initialisation) and the per-step mean squared displacement.
    func movementSection() -> String {
        let hasDistance = rows.contains { $0.metric == MetricName.distanceFromReference && $0.site.hasPrefix("weights:") }
        let hasMSD = rows.contains { $0.metric == MetricName.msd }
        guard hasDistance || hasMSD else { return "" }
        var reference = "the reference checkpoint"
        if let runInfo, let object = (try? JSONSerialization.jsonObject(with: Data(runInfo.utf8))) as? [String: Any],
           let step = (object["weights_reference_step"] as? NSNumber)?.intValue {
            reference = step == 0 ? "initialisation (step 0)" : "step \(step)"
        }
        var plots: [Plot] = []
        for tensor in ["attention.dense.weight", "mlp.dense_4h_to_h.weight"] {
            plots.append(layerChart(title: "‖W − W_ref‖ of \(tensor)", yTitle: "‖W − W_ref‖_F",
                                    metric: MetricName.distanceFromReference, preferLog: false) { $0.hasPrefix("weights:") && $0.hasSuffix("." + tensor) })
        }
        var embeddings: [Series] = []
        for name in ["gpt_neox.embed_in.weight", "embed_out.weight"] {
            let points = rows.filter { $0.site == "weights:" + name && $0.metric == MetricName.distanceFromReference }.map { (step: $0.step, value: $0.value) }
            if !points.isEmpty { embeddings.append(Series(label: name, points: points)) }
        }
        if !embeddings.isEmpty {
            plots.append(.chart(LineChart(title: "‖W − W_ref‖ of the embeddings", yTitle: "‖W − W_ref‖_F", series: embeddings,
                                          ordered: false, preferLogY: false, axisSteps: allSteps)))
        }
        // MSD divided by the number of training steps since the previous checkpoint of the sweep.
        let steps = allSteps
        var perStep: [String: [(step: Int, value: Double)]] = [:]
        for row in rows where row.metric == MetricName.msd && row.site.hasPrefix("weights:") {
            guard let previous = steps.last(where: { $0 < row.step }), row.step > previous else { continue }
            perStep[String(row.site.dropFirst("weights:".count)), default: []].append((row.step, row.value / Double(row.step - previous)))
        }
        if perStep.isEmpty {
            plots.append(.missing("MSD per step: no 'msd' rows in metrics.csv; plot omitted."))
        } else {
            plots.append(.chart(LineChart(title: "Mean squared displacement per training step (MSD ÷ step gap)", yTitle: "MSD / (step − previous step)",
                                          series: perStep.keys.sorted().map { Series(label: $0, points: perStep[$0]!) }, ordered: false,
                                          preferLogY: true, axisSteps: allSteps)))
        }
        return section("Weight movement: distance from \(reference) (W_ref) and per-step displacement", plots)
    }

    // MARK: analysis probes

    func analysisSections() -> String {
        var html = ""
        if rows.contains(where: { $0.metric.hasPrefix("hist_bin_") && !$0.site.contains(":") }) {
            html += section("Activation distributions (fixed bins on [−R, R], R = max |x| of the final checkpoint at each site)", activationHistograms())
        }
        if rows.contains(where: { $0.site == SweepNames.embeddingSite }) || !analyses.correlations.isEmpty {
            html += section("Embedding structure", embeddingPlots())
        }
        if !analyses.spectra.isEmpty { html += section("Singular-value spectra (log-log)", spectrumPlots()) }
        if !analyses.directions.isEmpty || rows.contains(where: { $0.site.hasPrefix(SweepNames.svdSitePrefix) }) {
            html += section("SVD direction strings (Millidge & Black): tokens at both ends of W_U·u", directionPlots())
        }
        if rows.contains(where: { $0.metric == MetricName.gaussianLogLikelihood }) {
            html += section("Weight distribution shape: Gaussian vs logistic fits", shapePlots())
        }
        return html
    }

    /// Bin × step heatmaps of the activation histograms of layer 0 and the last layer; colour =
    /// fraction of the site's activations in the bin (log scale shared by all of them).
    func activationHistograms() -> [Plot] {
        var bins: [String: [Int: [Int: Double]]] = [:], range: [String: Double] = [:], totals: [String: [Int: Double]] = [:]
        var layers: Set<Int> = []
        for row in rows where row.metric.hasPrefix("hist_") && !row.site.contains(":") {
            guard let layer = row.layer else { continue }
            layers.insert(layer)
            let key = "\(layer)|\(row.site)"
            if row.metric.hasPrefix("hist_bin_"), let index = Int(row.metric.dropFirst("hist_bin_".count)) {
                bins[key, default: [:]][index, default: [:]][row.step] = row.value
                totals[key, default: [:]][row.step, default: 0] += row.value
            } else if row.metric == MetricName.histRange {
                range[key] = row.value
            } else if row.metric == MetricName.histUnderflow || row.metric == MetricName.histOverflow {
                totals[key, default: [:]][row.step, default: 0] += row.value
            }
        }
        guard let first = layers.min(), let last = layers.max() else { return [] }
        var fractions: [String: [Int: [Int: Double]]] = [:]
        for (key, cells) in bins {
            fractions[key] = cells.mapValues { bySteps in
                bySteps.reduce(into: [Int: Double]()) { result, entry in
                    if let total = totals[key]?[entry.key], total > 0 { result[entry.key] = entry.value / total }
                }
            }
        }
        let positive = fractions.values.flatMap { $0.values.flatMap(\.values) }.filter { $0 > 0 }
        let high = pow(10, ceil(log10(positive.max() ?? 1)))
        let low = max(pow(10, floor(log10(positive.min() ?? 1e-6))), high / 1e6)
        let colour = HeatmapColour.logarithmic(low: low, high: low < high ? high : low * 10, label: "fraction of activations")
        var plots: [Plot] = []
        for layer in Set([first, last]).sorted() {
            for site in ActivationSite.allCases.map(\.rawValue) {
                let key = "\(layer)|\(site)"
                guard let cells = fractions[key], let R = range[key] else {
                    plots.append(.missing("Activation histogram of layer \(layer) \(site): no 'hist_bin_*' rows; plot omitted."))
                    continue
                }
                let binCount = (cells.keys.max() ?? 0) + 1
                let edge = { (index: Int) in -R + 2 * R * Double(index) / Double(binCount) }
                let label = { (value: Double) in value == 0 ? "0" : String(format: "%.3g", value) }
                let ticks = stride(from: 0, through: binCount, by: max(1, binCount / 8)).map { (position: Double($0), label: label(edge($0))) }
                let outside = (totals[key] ?? [:]).compactMap { step, total -> Double? in
                    let inside = cells.values.reduce(0.0) { $0 + ($1[step] ?? 0) }
                    return total > 0 ? 1 - inside : nil
                }.max() ?? 0
                var title = "layer \(layer) \(site): R = \(String(format: "%.3g", R))"
                if outside > 1e-12 { title += String(format: ", ≤ %.2g%% outside", 100 * outside) }
                plots.append(.chart(Heatmap(title: title, cells: cells, rowTitle: "activation value (\(binCount) bins)",
                                            rowName: { "x in [\(label(edge($0))), \(label(edge($0 + 1))))" }, rowEdgeTicks: ticks,
                                            colour: colour, left: 96)))
            }
        }
        return plots
    }

    /// Correlation heatmaps of the first token embeddings (up to four checkpoints) and the norm summaries.
    func embeddingPlots() -> [Plot] {
        var plots: [Plot] = []
        let steps = analyses.correlations.keys.sorted()
        let shown = steps.count <= 4 ? steps : Array(Set([0, steps.count / 3, 2 * steps.count / 3, steps.count - 1].map { steps[$0] })).sorted()
        for step in shown {
            let matrix = analyses.correlations[step]!
            plots.append(.chart(MatrixImage(title: "Embedding correlation (first \(matrix.count)), step \(step)", matrix: matrix,
                                            dataFile: "steps/\(String(format: "step%06d", step))/\(SweepNames.embeddingCorrelationFile)")))
        }
        if steps.count > shown.count {
            plots.append(.missing("Correlation heatmaps are drawn for \(shown.count) of \(steps.count) checkpoints; every checkpoint's matrix is in steps/stepNNNNNN/\(SweepNames.embeddingCorrelationFile)."))
        }
        var series: [Series] = []
        for (site, name) in [(SweepNames.embeddingSite, "embed_in"), (SweepNames.unembeddingSite, "embed_out")] {
            for (metric, label) in [(MetricName.tokenNormP10, "p10"), (MetricName.tokenNormP50, "median"), (MetricName.tokenNormP90, "p90")] {
                let points = modelWidePoints(site: site, metric: metric)
                if !points.isEmpty { series.append(Series(label: "\(name) \(label)", points: points)) }
            }
        }
        if !series.isEmpty {
            plots.append(.chart(LineChart(title: "Per-token L2 norm of the embedding and unembedding (10/50/90 %)", yTitle: "‖e_token‖₂",
                                          series: series, ordered: false, preferLogY: false, axisSteps: allSteps)))
        }
        let correlation = modelWidePoints(site: SweepNames.embeddingSite, metric: MetricName.correlationMeanOffDiagonal)
        if !correlation.isEmpty {
            plots.append(.chart(LineChart(title: "Mean correlation between distinct token embeddings (first 256 tokens)", yTitle: "mean off-diagonal r",
                                          series: [Series(label: "embed_in", points: correlation)], ordered: false, preferLogY: false,
                                          axisSteps: allSteps)))
        }
        return plots
    }

    /// The last layer's spectra, one line per checkpoint (at most 8, spread over the sweep), log-log.
    func spectrumPlots() -> [Plot] {
        let steps = analyses.spectra.keys.sorted()
        let shown = steps.count <= 8 ? steps : Array(Set((0..<8).map { steps[$0 * (steps.count - 1) / 7] })).sorted()
        guard let lastLayer = analyses.spectra.values.flatMap({ $0.entries.map(\.layer) }).max() else { return [] }
        let prefix = "gpt_neox.layers.\(lastLayer)."
        return ["attention.query_key_value", "attention.dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h", "attention.w_ov.head0", "attention.w_qk.head0"]
            .map { matrix in
                let lines = shown.compactMap { step -> XYChart.Line? in
                    guard let entry = analyses.spectra[step]?.entries.first(where: { $0.matrix == prefix + matrix }) else { return nil }
                    return XYChart.Line(label: "step \(step)", points: entry.values.enumerated().map { (x: Double($0.offset + 1), y: $0.element) })
                }
                guard !lines.isEmpty else { return .missing("Spectrum of \(prefix + matrix): not in singular_values.csv; plot omitted.") }
                return .chart(XYChart(title: "Singular values of layer \(lastLayer) \(matrix)", xTitle: "rank i", yTitle: "σ_i",
                                      lines: lines, logX: true, logY: true))
            }
    }

    /// Overlap with the final checkpoint per layer, and the direction tables (final checkpoint open).
    func directionPlots() -> [Plot] {
        var plots: [Plot] = [
            layerChart(title: "mlp.dense_4h_to_h directions: overlap with final", yTitle: "token overlap (mean over directions)",
                       metric: MetricName.overlapFinalMean, preferLog: false) { $0.hasPrefix(SweepNames.svdSitePrefix) && $0.hasSuffix(".mlp.dense_4h_to_h") },
        ]
        var ov: [Int: [Int: [Double]]] = [:]
        for row in rows where row.metric == MetricName.overlapFinalMean && row.site.contains(".attention.w_ov.head") {
            if let layer = row.layer { ov[layer, default: [:]][row.step, default: []].append(row.value) }
        }
        if !ov.isEmpty {
            plots.append(.chart(LineChart(title: "W_OV directions: overlap with final (head mean)",
                                          yTitle: "overlap (mean over directions and heads)",
                                          series: ov.keys.sorted().map { layer in
                                              Series(label: "layer \(layer)", points: ov[layer]!.map { (step: $0.key, value: $0.value.reduce(0, +) / Double($0.value.count)) })
                                          }, ordered: true, preferLogY: false, axisSteps: allSteps)))
        }
        let steps = analyses.directions.keys.sorted()
        guard let finalStep = steps.last else { return plots }
        func shown(_ token: String) -> String {
            "‹" + token.replacingOccurrences(of: " ", with: "␣").replacingOccurrences(of: "\n", with: "↵").replacingOccurrences(of: "\t", with: "⇥") + "›"
        }
        var csvRows: [[String]] = []
        var tables = ""
        for step in steps.reversed() {
            let file = analyses.directions[step]!
            var table = "<table class=\"directions\"><tr><th>layer</th><th>matrix</th><th>k</th><th>σ</th><th>top tokens of W_U·u</th><th>bottom tokens</th><th>overlap with step \(file.finalStep)</th></tr>"
            for d in file.directions {
                let matrix = d.matrix.replacingOccurrences(of: "gpt_neox.layers.\(d.layer).", with: "")
                table += "<tr><td class=\"num\">\(d.layer)</td><td>\(SVG.escape(matrix))</td><td class=\"num\">\(d.direction)</td>"
                table += "<td class=\"num\">\(String(format: "%.4g", d.singularValue))</td>"
                table += "<td class=\"tokens\">\(SVG.escape(d.topTokens.map(shown).joined(separator: " ")))</td>"
                table += "<td class=\"tokens\">\(SVG.escape(d.bottomTokens.map(shown).joined(separator: " ")))</td>"
                table += "<td class=\"num\">\(d.overlapFinal.map { String(format: "%.2f", $0) } ?? "–")</td></tr>"
                csvRows.append([String(step), String(d.layer), d.matrix, String(d.direction), MetricsCSV.format(d.singularValue),
                                d.topIds.map(String.init).joined(separator: " "), d.topTokens.joined(separator: "\u{1f}"),
                                d.bottomIds.map(String.init).joined(separator: " "), d.bottomTokens.joined(separator: "\u{1f}"),
                                d.overlapFinal.map(MetricsCSV.format) ?? ""])
            }
            table += "</table>"
            let count = file.directions.count
            tables += "<details\(step == finalStep ? " open" : "")><summary>step \(step): \(count) directions</summary>\(table)</details>"
        }
        let note = "<p class=\"note\">Each row is one of the leading output-space singular vectors u of a matrix (sign fixed so its largest component is positive), "
            + "read through the unembedding W_U without the final LayerNorm: the tokens with the largest and smallest W_U·u. ‹␣› is a space, ‹↵› a newline. "
            + "Overlap = shared tokens with the final checkpoint's same direction (either sign), out of both ends.</p>"
        plots.append(.html(note + tables, csv: CSVText.table(["step", "layer", "matrix", "direction", "singular_value", "top_ids", "top_tokens",
                                                              "bottom_ids", "bottom_tokens", "overlap_final"], csvRows),
                           name: "svd-direction-strings"))
        return plots
    }

    /// Logistic minus Gaussian log-likelihood per layer, the share of tensors where the logistic wins,
    /// and a QQ plot of the last layer's MLP output matrix.
    func shapePlots() -> [Plot] {
        var plots: [Plot] = []
        for tensor in ["mlp.dense_4h_to_h.weight", "attention.dense.weight", "attention.query_key_value.weight", "mlp.dense_h_to_4h.weight"] {
            plots.append(layerChart(title: "\(tensor): logistic − Gaussian loglik", yTitle: "Δ mean log-likelihood (> 0: heavier tails)",
                                    metric: MetricName.logisticMinusGaussian, preferLog: false, reference: (0, "equal fit")) {
                $0.hasPrefix("weights:") && $0.hasSuffix("." + tensor)
            })
        }
        var better: [Int: (Double, Double)] = [:]
        for row in rows where row.metric == MetricName.logisticFitsBetter {
            let current = better[row.step] ?? (0, 0)
            better[row.step] = (current.0 + row.value, current.1 + 1)
        }
        plots.append(.chart(LineChart(title: "Share of weight tensors better fitted by a logistic than a Gaussian", yTitle: "fraction of tensors",
                                      series: [Series(label: "logistic better", points: better.map { (step: $0.key, value: $0.value.0 / $0.value.1) })],
                                      ordered: false, preferLogY: false, includeZero: true, axisSteps: allSteps)))
        // QQ: standardised by the fitted Gaussian (μ = its median quantile, σ from its quartiles).
        let layers = rows.filter { $0.metric == MetricName.gaussianLogLikelihood }.compactMap(\.layer)
        if let last = layers.max() {
            let site = "weights:gpt_neox.layers.\(last).mlp.dense_4h_to_h.weight"
            var byStep: [Int: [String: Double]] = [:]
            for row in rows where row.site == site && row.metric.hasPrefix("qq_") { byStep[row.step, default: [:]][row.metric] = row.value }
            let zQuartile = 0.6744897501960817
            var lines: [XYChart.Line] = []
            var logistic: XYChart.Line?
            for step in byStep.keys.sorted() {
                let q = byStep[step]!
                let indices = (0..<100).filter { q[String(format: "qq_%02d_p", $0)] != nil }
                guard let mu = indices.first(where: { q[String(format: "qq_%02d_p", $0)] == 0.5 }).flatMap({ q[String(format: "qq_%02d_gaussian", $0)] }),
                      let i25 = indices.first(where: { q[String(format: "qq_%02d_p", $0)] == 0.25 }),
                      let i75 = indices.first(where: { q[String(format: "qq_%02d_p", $0)] == 0.75 }),
                      let g25 = q[String(format: "qq_%02d_gaussian", i25)], let g75 = q[String(format: "qq_%02d_gaussian", i75)], g75 > g25 else { continue }
                let sigma = (g75 - g25) / (2 * zQuartile)
                let z = { (i: Int) in (q[String(format: "qq_%02d_gaussian", i)]! - mu) / sigma }
                lines.append(.init(label: "step \(step)", points: indices.map { (x: z($0), y: (q[String(format: "qq_%02d_empirical", $0)]! - mu) / sigma) }))
                logistic = .init(label: "logistic fit, step \(step)", points: indices.map { (x: z($0), y: (q[String(format: "qq_%02d_logistic", $0)]! - mu) / sigma) },
                                 dashedColour: "#d93025")
            }
            if lines.isEmpty {
                plots.append(.missing("QQ plot of \(site): no qq_* rows; plot omitted."))
            } else {
                let span = lines.flatMap { $0.points.map(\.x) }
                let identity = XYChart.Line(label: "Gaussian fit", points: [(x: span.min()!, y: span.min()!), (x: span.max()!, y: span.max()!)], dashedColour: "#555")
                if lines.count > 8 { lines = (0..<8).map { lines[$0 * (lines.count - 1) / 7] } }
                plots.append(.chart(XYChart(title: "QQ: layer \(last) mlp.dense_4h_to_h.weight vs its Gaussian fit", xTitle: "Gaussian quantile (σ units)",
                                            yTitle: "empirical quantile (σ units)", lines: lines + [identity] + (logistic.map { [$0] } ?? []))))
            }
        }
        return plots
    }
}
