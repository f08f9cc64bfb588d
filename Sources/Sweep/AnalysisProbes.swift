import Formats
import Foundation
import NeoX
import ProbeStats
import Results
import Tokenizers

/// The analysis probes of the interpretability and training-dynamics literature the sweep serves
/// (issue 13), kept in one file so the rest of the sweep only learns that they exist:
///
/// - `activation_histograms` (Conjecture's activation distributions): per site and layer
///   (resid_pre, attn_out, mlp_out, resid_post), counts of the evaluation tokens' activations in
///   fixed bins over [−R, R], R = max |x| of the *final* checkpoint of the suite (its last step) at
///   that site on the same tokens, plus underflow/overflow. Its own streamed forward pass.
/// - `embeddings`: the Pearson correlation matrix of the first 256 token embeddings
///   (`numpy.corrcoef(E[:256])`, file `embedding_correlation.csv`) and summaries of the per-token
///   L2 norms of `embed_in` and `embed_out`.
/// - `spectra`: every singular value of each layer's QKV, attention dense, MLP in and out, and each
///   head's OV (W_O·W_V) and QK (W_Qᵀ·W_K) circuits (file `singular_values.csv`).
/// - `svd_directions` (Millidge & Black 2022): the top-k output-space singular vectors of each
///   layer's `mlp.dense_4h_to_h` and each head's OV circuit, read through the unembedding: the n
///   tokens with the largest and smallest W_U·u (file `svd_directions.json`, decoded with the
///   tokenizer), and their overlap with the final checkpoint's same direction.
/// - `weight_shape`: Gaussian vs logistic fits and QQ quantiles of every weight tensor.
extension SweepProbe {
    /// Probes that read only the weights (no forward pass).
    var readsWeightsOnly: Bool { self == .embeddings || self == .spectra || self == .svdDirections || self == .weightShape }
}

/// What the analysis probes are asked for (defaults match the literature's plots).
public struct AnalysisOptions: Sendable, Equatable {
    /// Bins of the activation histograms.
    public var activationHistogramBins = 64
    /// Tokens whose embeddings are correlated (the first N ids).
    public var correlationTokens = 256
    /// Singular directions per matrix, and tokens at each end of a direction.
    public var svdDirections = 4
    public var svdTokens = 10

    public init() {}

    /// What their numbers depend on (run.json options, fingerprint).
    func canonical(_ probes: Set<SweepProbe>, finalStep: Int) -> [String: String] {
        var canonical: [String: String] = [:]
        if probes.contains(.activationHistograms) {
            canonical["activation_histogram_bins"] = String(activationHistogramBins)
            canonical["activation_histogram_reference_step"] = String(finalStep)
        }
        if probes.contains(.embeddings) { canonical["correlation_tokens"] = String(correlationTokens) }
        if probes.contains(.svdDirections) {
            canonical["svd_directions"] = String(svdDirections)
            canonical["svd_tokens"] = String(svdTokens)
            canonical["svd_final_step"] = String(finalStep)
        }
        return canonical
    }

    func check(_ probes: Set<SweepProbe>) throws {
        if probes.contains(.activationHistograms), !(1...4096).contains(activationHistogramBins) {
            throw SweepError(.invalidOption, option: .histogramBins, "activation histogram bins \(activationHistogramBins) must lie in 1...4096")
        }
        if probes.contains(.embeddings), !(2...4096).contains(correlationTokens) {
            throw SweepError(.invalidOption, option: .correlationTokens, "correlation token count \(correlationTokens) must lie in 2...4096")
        }
        if probes.contains(.svdDirections), !(1...256).contains(svdDirections) {
            throw SweepError(.invalidOption, option: .svdDirections, "SVD directions per matrix \(svdDirections) must lie in 1...256")
        }
        if probes.contains(.svdDirections), !(1...1000).contains(svdTokens) {
            throw SweepError(.invalidOption, option: .svdTokens, "tokens per end of a direction \(svdTokens) must lie in 1...1000")
        }
    }
}

/// What the analysis probes keep across checkpoints: the final checkpoint's histogram ranges and
/// direction ends (computed once, on first need).
final class AnalysisReferences: @unchecked Sendable {
    var binnings: [HistogramBinning]?
    var finalEnds: [String: [DirectionTokens.Ends]]?
}

/// The weight-reading analyses of one checkpoint, usable without a sweep.
public struct WeightAnalyses: Sendable {
    public var options: AnalysisOptions

    public init(options: AnalysisOptions = AnalysisOptions()) {
        self.options = options
    }

    /// The unembedding's tensor name (the input embedding when the model ties them).
    static func unembeddingName(_ checkpoint: Checkpoint) -> String {
        checkpoint.entries["embed_out.weight"] != nil ? "embed_out.weight" : "gpt_neox.embed_in.weight"
    }

    // MARK: embeddings

    /// Rows of the `embeddings` probe and the correlation matrix of the first tokens.
    public func embeddings(checkpoint: Checkpoint, step: Int) throws -> (rows: [MetricRow], correlation: CorrelationMatrix) {
        let config = checkpoint.config
        let (V, d) = (config.vocabSize, config.hiddenSize)
        let embedding = try checkpoint.tensor("gpt_neox.embed_in.weight", shape: [V, d])
        let count = min(options.correlationTokens, V)
        let correlation = CorrelationMatrix(count: count, values: EmbeddingStatistics.rowCorrelations(embedding, count: count, dimension: d))
        var rows = Self.normRows(EmbeddingStatistics.rowNorms(embedding, dimension: d), step: step, site: SweepNames.embeddingSite)
        rows += MetricSite(step: step, layer: nil, site: SweepNames.embeddingSite).rows([
            MetricName.correlationMeanOffDiagonal: EmbeddingStatistics.meanOffDiagonal(correlation.values, count: count),
            MetricName.correlationTokens: Double(count),
        ])
        let unembedding = try checkpoint.tensor(Self.unembeddingName(checkpoint), shape: [V, d])
        rows += Self.normRows(EmbeddingStatistics.rowNorms(unembedding, dimension: d), step: step, site: SweepNames.unembeddingSite)
        return (rows, correlation)
    }

    static func normRows(_ norms: [Double], step: Int, site: String) -> [MetricRow] {
        let summary = DistributionSummary(values: norms)
        return MetricSite(step: step, layer: nil, site: site).rows([
            MetricName.tokenNormMean: summary.mean, MetricName.tokenNormStd: summary.std,
            MetricName.tokenNormMin: summary.minimum, MetricName.tokenNormP10: summary.p10,
            MetricName.tokenNormP50: summary.p50, MetricName.tokenNormP90: summary.p90,
            MetricName.tokenNormMax: summary.maximum,
        ])
    }

    // MARK: spectra

    /// Every singular value of each layer's matrices and per-head circuits, and their rows.
    public func spectra(checkpoint: Checkpoint, step: Int) throws -> (rows: [MetricRow], table: SpectrumTable) {
        let config = checkpoint.config
        let (d, ff, H) = (config.hiddenSize, config.intermediateSize, config.numHeads)
        var entries: [SpectrumTable.Entry] = []
        for layer in 0..<config.numLayers {
            let prefix = "gpt_neox.layers.\(layer)."
            let shapes: [(String, Int, Int)] = [("attention.query_key_value", 3 * d, d), ("attention.dense", d, d),
                                                ("mlp.dense_h_to_4h", ff, d), ("mlp.dense_4h_to_h", d, ff)]
            var tensors: [String: [Float]] = [:]
            for (name, rows, columns) in shapes {
                let values = try checkpoint.tensor(prefix + name + ".weight", shape: [rows, columns])
                tensors[name] = values
                entries.append(.init(layer: layer, matrix: prefix + name, values: try Spectrum.singularValues(values, rows: rows, columns: columns)))
            }
            let heads = AttentionHeadWeights(qkvWeight: tensors["attention.query_key_value"]!, denseWeight: tensors["attention.dense"]!,
                                             hiddenSize: d, numHeads: H)
            for head in 0..<H {
                let ov = try Spectrum.ovSingularValues(wO: heads.output(head: head).map(Double.init),
                                                       wV: heads.weight(.value, head: head).map(Double.init), hidden: d, headDim: heads.headDim)
                let qk = try Spectrum.qkSingularValues(wQ: heads.weight(.query, head: head).map(Double.init),
                                                       wK: heads.weight(.key, head: head).map(Double.init), hidden: d, headDim: heads.headDim)
                entries.append(.init(layer: layer, matrix: prefix + "attention.w_ov.head\(head)", values: ov))
                entries.append(.init(layer: layer, matrix: prefix + "attention.w_qk.head\(head)", values: qk))
            }
        }
        let rows = entries.flatMap { entry -> [MetricRow] in
            let squares = entry.values.reduce(0) { $0 + $1 * $1 }
            let top = entry.values.first ?? 0
            return MetricSite(step: step, layer: entry.layer, site: SweepNames.spectrumSitePrefix + entry.matrix).rows([
                MetricName.singularValueCount: Double(entry.values.count),
                MetricName.stableRank: top > 0 ? squares / (top * top) : .nan,
            ])
        }
        return (rows, SpectrumTable(entries: entries))
    }

    // MARK: SVD directions

    /// (matrix name, its leading output-space directions) for every layer's MLP output and OV circuits.
    public func directions(checkpoint: Checkpoint) throws -> [(layer: Int, matrix: String, directions: SingularDirections)] {
        let config = checkpoint.config
        let (d, ff, H, k) = (config.hiddenSize, config.intermediateSize, config.numHeads, options.svdDirections)
        var result: [(layer: Int, matrix: String, directions: SingularDirections)] = []
        for layer in 0..<config.numLayers {
            let prefix = "gpt_neox.layers.\(layer)."
            let mlp = try checkpoint.tensor(prefix + "mlp.dense_4h_to_h.weight", shape: [d, ff]).map(Double.init)
            result.append((layer, prefix + "mlp.dense_4h_to_h", try Spectrum.leftSingularDirections(mlp, rows: d, columns: ff, count: k)))
            let heads = AttentionHeadWeights(
                qkvWeight: try checkpoint.tensor(prefix + "attention.query_key_value.weight", shape: [3 * d, d]),
                denseWeight: try checkpoint.tensor(prefix + "attention.dense.weight", shape: [d, d]), hiddenSize: d, numHeads: H)
            for head in 0..<H {
                let directions = try Spectrum.productLeftSingularDirections(
                    wO: heads.output(head: head).map(Double.init), wV: heads.weight(.value, head: head).map(Double.init),
                    hidden: d, headDim: heads.headDim, count: k)
                result.append((layer, prefix + "attention.w_ov.head\(head)", directions))
            }
        }
        return result
    }

    /// Each matrix's direction ends through this checkpoint's unembedding, by matrix name.
    public func ends(checkpoint: Checkpoint) throws -> [(layer: Int, matrix: String, values: [Double], ends: [DirectionTokens.Ends])] {
        let config = checkpoint.config
        let unembedding = try checkpoint.tensor(Self.unembeddingName(checkpoint), shape: [config.vocabSize, config.hiddenSize])
        let matrices = try directions(checkpoint: checkpoint)
        let all = DirectionTokens.ends(unembedding: unembedding, vocabulary: config.vocabSize, dimension: config.hiddenSize,
                                       directions: matrices.flatMap(\.directions.vectors), count: options.svdTokens)
        var offset = 0
        return matrices.map { matrix in
            let count = matrix.directions.vectors.count
            defer { offset += count }
            return (matrix.layer, matrix.matrix, matrix.directions.values, Array(all[offset..<(offset + count)]))
        }
    }

    /// The `svd_directions` file and rows of `checkpoint`, compared with `finalEnds` (by matrix).
    public func svdDirections(checkpoint: Checkpoint, step: Int, finalStep: Int, finalEnds: [String: [DirectionTokens.Ends]],
                              tokenizer: (any TextTokenizer)?) throws -> (rows: [MetricRow], file: SVDDirectionFile) {
        func decode(_ ids: [Int]) throws -> [String] {
            guard let tokenizer else { return ids.map { "<\($0)>" } }
            return try ids.map { try tokenizer.decode([Int32($0)]) }
        }
        var records: [SVDDirectionFile.Direction] = []
        var rows: [MetricRow] = []
        for matrix in try ends(checkpoint: checkpoint) {
            let at = MetricSite(step: step, layer: matrix.layer, site: SweepNames.svdSitePrefix + matrix.matrix)
            var overlaps: [Double] = []
            for (index, ends) in matrix.ends.enumerated() {
                let final = finalEnds[matrix.matrix].flatMap { index < $0.count ? $0[index] : nil }
                let overlap = final.map { DirectionTokens.overlap(ends, $0) }
                if let overlap {
                    overlaps.append(overlap)
                    rows.append(at.row(MetricName.overlapFinal(direction: index + 1), overlap))
                }
                records.append(.init(layer: matrix.layer, matrix: matrix.matrix, direction: index + 1, singularValue: matrix.values[index],
                                     topIds: ends.top, topTokens: try decode(ends.top), bottomIds: ends.bottom,
                                     bottomTokens: try decode(ends.bottom), overlapFinal: overlap))
            }
            if !overlaps.isEmpty { rows.append(at.row(MetricName.overlapFinalMean, overlaps.reduce(0, +) / Double(overlaps.count))) }
        }
        return (rows, SVDDirectionFile(step: step, finalStep: finalStep, directions: records))
    }

    // MARK: distribution shape

    /// Gaussian vs logistic fits and QQ rows of every floating-point tensor (constant ones omitted).
    public func weightShape(checkpoint: Checkpoint, step: Int) throws -> [MetricRow] {
        var rows: [MetricRow] = []
        for name in checkpoint.tensorNames {
            guard let entry = checkpoint.entries[name], entry.dtype.isFloatingPoint,
                  let shape = DistributionShape(values: try checkpoint.tensor(name, shape: entry.shape)) else { continue }
            rows += shape.metricRows(step: step, layer: WeightProbe.layerIndex(tensor: name), site: WeightProbe.site(tensor: name))
        }
        return rows
    }
}

extension DistributionShape {
    /// Rows `gaussian_loglik`, `logistic_loglik`, their difference, `logistic_better`, the fits, and QQ rows.
    public func metricRows(step: Int, layer: Int?, site: String) -> [MetricRow] {
        let at = MetricSite(step: step, layer: layer, site: site)
        var rows = at.rows([
            MetricName.gaussianLogLikelihood: gaussianLogLikelihood, MetricName.logisticLogLikelihood: logisticLogLikelihood,
            MetricName.logisticMinusGaussian: logisticLogLikelihood - gaussianLogLikelihood,
            MetricName.logisticFitsBetter: logisticFitsBetter ? 1 : 0,
            MetricName.logisticLocation: logisticLocation, MetricName.logisticScale: logisticScale,
        ])
        for (i, p) in Self.probabilities.enumerated() {
            rows += at.rows([MetricName.qq(i, "p"): p, MetricName.qq(i, "empirical"): empiricalQuantiles[i],
                             MetricName.qq(i, "gaussian"): gaussianQuantiles[i], MetricName.qq(i, "logistic"): logisticQuantiles[i]])
        }
        return rows
    }
}

/// Fixed-bin activation histograms of one model on the evaluation tokens (one streamed pass).
struct ActivationHistogramMeasurement {
    /// max |x| per site of `model` (the reference's ranges).
    static func ranges(model: NeoXModel, sites: [MeasuredSite], sequences: [[Int32]], tokensPerBatch: Int) throws -> [RangeAccumulator] {
        var ranges = sites.map { _ in RangeAccumulator() }
        try stream(model: model, sites: sites, sequences: sequences, tokensPerBatch: tokensPerBatch) { k, values in ranges[k].add(values) }
        return ranges
    }

    static func histograms(model: NeoXModel, sites: [MeasuredSite], binnings: [HistogramBinning], sequences: [[Int32]],
                           tokensPerBatch: Int) throws -> [Histogram] {
        var accumulators = binnings.map { HistogramAccumulator(binning: $0) }
        try stream(model: model, sites: sites, sequences: sequences, tokensPerBatch: tokensPerBatch) { k, values in accumulators[k].add(values) }
        return accumulators.map(\.histogram)
    }

    private static func stream(model: NeoXModel, sites: [MeasuredSite], sequences: [[Int32]], tokensPerBatch: Int,
                               consume: @escaping (Int, UnsafeBufferPointer<Float>) -> Void) throws {
        guard let T = sequences.first?.count, T > 0 else { return }
        let hooks = sites.map(\.hook)
        let index = Dictionary(uniqueKeysWithValues: hooks.enumerated().map { ($1, $0) })
        let plan = try ForwardPlan(config: model.config, hooks: hooks)
        let perBatch = max(1, tokensPerBatch / T)
        var start = 0
        while start < sequences.count {
            let batch = Array(sequences[start..<min(sequences.count, start + perBatch)])
            _ = try model.forward(tokens: batch, plan: plan) { hook, _, values in
                if let k = index[hook] { consume(k, values) }
            }
            start += batch.count
        }
    }
}

extension SweepMeasurer {
    /// The final checkpoint of the suite (its last step): histogram ranges and direction overlaps refer to it.
    var analysisFinal: SweepCheckpoint { plan.suite.checkpoints.last! }

    /// The analysis probes `job` lacks, each with its per-checkpoint file written before its rows.
    func analyses(_ job: SweepJob, loaded: SweepLoader.Loaded, progress: CheckpointProgress) throws -> [SweepProbe: [MetricRow]] {
        let wanted = Set(job.missing).intersection([.activationHistograms, .embeddings, .spectra, .svdDirections, .weightShape])
        guard !wanted.isEmpty else { return [:] }
        let options = plan.options.analysis
        let analyses = WeightAnalyses(options: options)
        let folder = plan.results.stepDirectory(job.step)
        let checkpoint = loaded.checkpoint
        var rows: [SweepProbe: [MetricRow]] = [:]
        if wanted.contains(.activationHistograms) {
            progress.update("activation histograms", fraction: 0.86)
            guard let model = loaded.model else { throw SweepError(.internal, "internal: activation histograms need a model") }
            if analysisReferences.binnings == nil {
                let reference = job.step == analysisFinal.step ? model : try NeoXModel(directory: analysisFinal.directory, activation: plan.options.activation,
                                                                                        loadUnembedding: false, allowNonFinite: plan.options.allowNonFinite)
                analysisReferences.binnings = try ActivationHistogramMeasurement.ranges(
                    model: reference, sites: plan.sites, sequences: plan.sequences, tokensPerBatch: plan.options.tokensPerBatch)
                    .map { $0.binning(binCount: options.activationHistogramBins) }
            }
            let histograms = try ActivationHistogramMeasurement.histograms(
                model: model, sites: plan.sites, binnings: analysisReferences.binnings!, sequences: plan.sequences,
                tokensPerBatch: plan.options.tokensPerBatch)
            rows[.activationHistograms] = zip(plan.sites, histograms).flatMap { at, histogram in
                histogram.metricRows(step: job.step, layer: at.layer, site: at.site.rawValue)
            }
        }
        if wanted.contains(.embeddings) {
            progress.update("embeddings", fraction: 0.87)
            let (measured, correlation) = try analyses.embeddings(checkpoint: checkpoint, step: job.step)
            try AtomicFile.write(Data(correlation.encode().utf8), to: folder.appendingPathComponent(SweepNames.embeddingCorrelationFile))
            rows[.embeddings] = measured
        }
        if wanted.contains(.spectra) {
            progress.update("spectra", fraction: 0.88)
            let (measured, table) = try analyses.spectra(checkpoint: checkpoint, step: job.step)
            try AtomicFile.write(Data(table.encode().utf8), to: folder.appendingPathComponent(SweepNames.spectraFile))
            rows[.spectra] = measured
        }
        if wanted.contains(.svdDirections) {
            progress.update("svd directions", fraction: 0.89)
            if analysisReferences.finalEnds == nil {
                let final = job.step == analysisFinal.step ? checkpoint : try Checkpoint(directory: analysisFinal.directory)
                var ends: [String: [DirectionTokens.Ends]] = [:]
                for matrix in try analyses.ends(checkpoint: final) { ends[matrix.matrix] = matrix.ends }
                analysisReferences.finalEnds = ends
            }
            let (measured, file) = try analyses.svdDirections(checkpoint: checkpoint, step: job.step, finalStep: analysisFinal.step,
                                                              finalEnds: analysisReferences.finalEnds!, tokenizer: plan.inputs.tokenizer)
            try AtomicFile.write(try file.encode(), to: folder.appendingPathComponent(SweepNames.svdDirectionsFile))
            rows[.svdDirections] = measured
        }
        if wanted.contains(.weightShape) {
            progress.update("weight shape", fraction: 0.9)
            rows[.weightShape] = try analyses.weightShape(checkpoint: checkpoint, step: job.step)
        }
        return rows
    }
}

extension Histogram {
    /// Rows `hist_range`, `hist_underflow`, `hist_overflow`, `hist_bin_<i>` (counts).
    func metricRows(step: Int, layer: Int?, site: String) -> [MetricRow] {
        let at = MetricSite(step: step, layer: layer, site: site)
        var rows = at.rows([MetricName.histRange: binning.range, MetricName.histUnderflow: Double(underflow),
                            MetricName.histOverflow: Double(overflow)])
        for (index, count) in counts.enumerated() { rows.append(at.row(MetricName.histBin(index, of: binning.binCount), Double(count))) }
        return rows
    }
}
