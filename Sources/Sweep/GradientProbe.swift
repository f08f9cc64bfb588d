import Formats
import NeoX
import ProbeStats
import Results

/// The sweep's `gradients` probe: the gradient of the mean next-token loss (HF convention on each
/// evaluation sequence) of one checkpoint, summarised as `MetricRow`s without ever holding more
/// than the parameter gradients and one pass's activations.
///
/// - site `gradients` (model-wide): `loss`, `token_count`.
/// - site `grad:<HF name>` for every parameter: `frobenius_norm`, `mean`, `std`, `max_abs`,
///   `kurtosis`, the fixed-bin histogram (`hist_range` = max|g| of this checkpoint's gradient,
///   `hist_bin_NN`, …) and `cosine_previous` (cosine similarity with the previous checkpoint's
///   gradient of the same tensor; absent for the first checkpoint).
/// - sites `grad:…attention.dense.weight`, `grad:…mlp.dense_4h_to_h.weight` and
///   `grad:gpt_neox.layers.L.attention.w_ov.headH` (∂(W_O·W_V) = ∂W_O·W_V + W_O·∂W_V per head):
///   `effective_rank`, `per`, `spectral_norm`.
/// - sites `grad:resid_pre`, `grad:attn_out`, `grad:mlp_out`, `grad:resid_post` per layer (the
///   activation gradients of the total loss): `max_abs`, `mean_norm`, `kurtosis`.
public final class GradientProbe {
    public static let lossSite = "gradients"
    public static func site(tensor name: String) -> String { "grad:" + name }
    public static func ovSite(layer: Int, head: Int) -> String { "grad:gpt_neox.layers.\(layer).attention.w_ov.head\(head)" }
    public static func site(activation: ActivationSite) -> String { "grad:" + activation.rawValue }

    public let histogramBins: Int
    /// The previous checkpoint's parameter gradients, for `cosine_previous`.
    private var previous: [String: [Float]] = [:]
    /// The step those gradients are of.
    private var previousStep: Int?

    public init(histogramBins: Int = 32) { self.histogramBins = histogramBins }

    /// Measures `model` (all blocks and the unembedding loaded) at `step` on `sequences`, in passes
    /// of at most `tokensPerPass` tokens (at least one sequence).
    ///
    /// `predecessor`, when given, is the step `cosine_previous` must compare with (the previous step
    /// of the sweep's selection): when the gradients held are of another step (a resumed or
    /// extended sweep starts mid-selection), no `cosine_previous` is written rather than a wrong one.
    public func measure(model: NeoXModel, step: Int, sequences: [[Int32]], tokensPerPass: Int, predecessor: Int?? = nil) throws -> [MetricRow] {
        let config = model.config, d = config.hiddenSize
        guard let length = sequences.first?.count, length >= 2 else {
            throw SweepError(.invalidOption, option: .data, "the gradients probe needs evaluation sequences of at least 2 tokens")
        }
        let perPass = max(1, tokensPerPass / length)
        let totalTokens = sequences.count * (length - 1)
        var activationStats: [HookPoint: OutlierStatistics] = [:]
        let sites: [(ActivationSite, (Int) -> HookPoint)] = [(.residPre, HookPoint.residPre), (.attnOut, HookPoint.attnOut),
                                                             (.mlpOut, HookPoint.mlpOut), (.residPost, HookPoint.residPost)]
        let hooks = (0..<config.numLayers).flatMap { L in sites.map { $0.1(L) } }
        let plan = try GradientPlan(config: config, parameters: NeoXModel.parameterNames(for: config), hooks: hooks)

        // Parameter gradients summed over passes (float64, weighted by tokens); activation
        // gradients summarised pass by pass, scaled to be gradients of the total loss.
        var sums: [String: [Double]] = [:], shapes: [String: [Int]] = [:]
        var lossSum = 0.0, tokenOffset = 0
        var start = 0
        while start < sequences.count {
            let batch = Array(sequences[start..<min(sequences.count, start + perPass)])
            let targets = try LossTargets.labels(batch)
            let weight = Double(targets.count), scale = Float(weight / Double(totalTokens))
            let offset = tokenOffset
            let result = try model.backward(tokens: batch, targets: targets, plan: plan) { point, shape, values in
                switch point {
                case .parameter(let name):
                    shapes[name] = shape
                    sums[name, default: [Double](repeating: 0, count: values.count)].withUnsafeMutableBufferPointer { sum in
                        for i in 0..<values.count { sum[i] += Double(values[i]) * weight }
                    }
                case .activation(let hook):
                    let scaled = values.map { $0 * scale }
                    activationStats[hook, default: OutlierStatistics(dimension: d)]
                        .add(rows: scaled, rowCount: values.count / d, tokenOffset: offset)
                }
            }
            lossSum += result.loss * weight
            tokenOffset += batch.count * length
            start += perPass
        }

        var rows = MetricSite(step: step, layer: nil, site: Self.lossSite)
            .rows([MetricName.loss: lossSum / Double(totalTokens), MetricName.tokenCount: Double(totalTokens)])
        var gradients: [String: [Float]] = [:]
        for name in plan.parameters {
            guard let sum = sums.removeValue(forKey: name) else { continue }
            let g = sum.map { Float($0 / Double(totalTokens)) }
            let layer = WeightProbe.layerIndex(tensor: name), site = Self.site(tensor: name)
            let binning = histogramBins > 0 ? HistogramBinning(reference: g, binCount: histogramBins) : nil
            rows += WeightStatistics(values: g, binning: binning).metricRows(step: step, layer: layer, site: site)
            if predecessor == nil || predecessor! == previousStep, let before = previous[name], before.count == g.count,
               let cosine = Self.cosine(g, before) {
                rows.append(MetricSite(step: step, layer: layer, site: site).row(MetricName.cosinePrevious, cosine))
            }
            if name.hasSuffix(".attention.dense.weight") || name.hasSuffix(".mlp.dense_4h_to_h.weight"), let shape = shapes[name] {
                let sigma = try Spectrum.singularValues(g, rows: shape[0], columns: shape[1])
                rows += SpectralStatistics(singularValues: sigma, hiddenSize: d).metricRows(step: step, layer: layer, site: site)
            }
            gradients[name] = g
        }
        for L in 0..<config.numLayers {
            let prefix = "gpt_neox.layers.\(L).attention."
            guard let dQKV = gradients[prefix + "query_key_value.weight"], let dDense = gradients[prefix + "dense.weight"] else { continue }
            let weights = model.weights.attentionHeads(layer: L)
            let grads = AttentionHeadWeights(qkvWeight: dQKV, denseWeight: dDense, hiddenSize: d, numHeads: config.numHeads)
            for head in 0..<config.numHeads {
                let product = Self.ovGradient(wO: weights.output(head: head), wV: weights.weight(.value, head: head),
                                              dWO: grads.output(head: head), dWV: grads.weight(.value, head: head),
                                              hidden: d, headDim: weights.headDim)
                let sigma = try Spectrum.singularValues(product, rows: d, columns: d)
                rows += SpectralStatistics(singularValues: sigma, hiddenSize: d).metricRows(step: step, layer: L, site: Self.ovSite(layer: L, head: head))
            }
        }
        for L in 0..<config.numLayers {
            for (site, hook) in sites {
                guard let stats = activationStats[hook(L)], stats.tokenCount > 0 else { continue }
                let at = MetricSite(step: step, layer: L, site: Self.site(activation: site))
                rows += at.rows([MetricName.maxAbs: stats.maxAbs, MetricName.meanNorm: stats.meanNorm])
                if let kurtosis = stats.kurtosis { rows.append(at.row(MetricName.kurtosis, kurtosis)) }
            }
        }
        previous = gradients
        previousStep = step
        return rows
    }

    /// ∂(W_O·W_V) = ∂W_O·W_V + W_O·∂W_V (d×d, float64): W_O, ∂W_O d×dh; W_V, ∂W_V dh×d.
    static func ovGradient(wO: [Float], wV: [Float], dWO: [Float], dWV: [Float], hidden d: Int, headDim dh: Int) -> [Double] {
        var out = [Double](repeating: 0, count: d * d)
        for r in 0..<d {
            for k in 0..<dh {
                let a = Double(dWO[r * dh + k]), b = Double(wO[r * dh + k])
                for c in 0..<d { out[r * d + c] += a * Double(wV[k * d + c]) + b * Double(dWV[k * d + c]) }
            }
        }
        return out
    }

    /// cos(a, b) in float64; nil when either is zero.
    static func cosine(_ a: [Float], _ b: [Float]) -> Double? {
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in 0..<a.count { let x = Double(a[i]), y = Double(b[i]); dot += x * y; na += x * x; nb += y * y }
        return na > 0 && nb > 0 ? dot / (na * nb).squareRoot() : nil
    }
}
