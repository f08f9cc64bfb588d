import Formats
import NeoX
import ProbeStats
import Results

/// Everything the sweep measures about a checkpoint's weights, as `MetricRow`s.
///
/// For every floating-point tensor (site `weights:<HF name>`, layer parsed from
/// `gpt_neox.layers.<n>.`, nil otherwise): `WeightStatistics` (norm, mean, std, max |w|, kurtosis,
/// distance from the reference checkpoint's tensor, histogram with bins fixed by the reference).
/// For the matrices that write into the residual stream (`attention.dense.weight`,
/// `mlp.dense_4h_to_h.weight`) and for each head's OV circuit
/// (site `weights:gpt_neox.layers.<n>.attention.w_ov.head<h>`): `SpectralStatistics`.
/// For `embed_out.weight` (configurable): `msd` from the previous checkpoint.
///
/// Per-head matrices come from NeoX's `AttentionHeadWeights` (the fused-QKV interleave lives
/// there): W_OV(h) = W_O(h)·W_V(h), W_O(h) d×dₕ and W_V(h) dₕ×d.
public struct WeightProbe: Sendable {
    public struct Options: Sendable {
        /// Bins of the fixed histogram (0 turns histograms off).
        public var histogramBins: Int
        /// Singular values of residual-writing matrices and OV circuits.
        public var spectra: Bool
        /// Tensors that get `msd` against the previous checkpoint.
        public var msdTensors: Set<String>

        public init(histogramBins: Int = 32, spectra: Bool = true, msdTensors: Set<String> = ["embed_out.weight"]) {
            self.histogramBins = histogramBins
            self.spectra = spectra
            self.msdTensors = msdTensors
        }
    }

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    /// Site name for a tensor.
    public static func site(tensor name: String) -> String { "weights:" + name }

    /// Site name for head `head`'s OV circuit in `layer`.
    public static func ovSite(layer: Int, head: Int) -> String {
        "weights:gpt_neox.layers.\(layer).attention.w_ov.head\(head)"
    }

    /// The layer index in `gpt_neox.layers.<n>.…`, nil for model-wide tensors.
    public static func layerIndex(tensor name: String) -> Int? {
        let prefix = "gpt_neox.layers."
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        return Int(rest.prefix { $0.isNumber })
    }

    /// Measures `checkpoint` at training step `step`. `reference` fixes the histogram bins and is
    /// the origin of `distance_from_reference` (nil: no distance, bins from the checkpoint itself);
    /// `previous` is the checkpoint measured before this one (nil for the first: no `msd`).
    public func measure(checkpoint: Checkpoint, step: Int, reference: Checkpoint?, previous: Checkpoint?) throws -> [MetricRow] {
        var rows: [MetricRow] = []
        for name in checkpoint.tensorNames {
            guard let entry = checkpoint.entries[name], entry.dtype.isFloatingPoint else { continue }
            let values = try checkpoint.tensor(name, shape: entry.shape)
            let layer = Self.layerIndex(tensor: name)
            let site = Self.site(tensor: name)
            var referenceValues: [Float]? = nil
            if let reference, let referenceEntry = reference.entries[name], referenceEntry.shape == entry.shape {
                referenceValues = try reference.tensor(name, shape: entry.shape)
            }
            var binning: HistogramBinning? = nil
            if options.histogramBins > 0 {
                binning = HistogramBinning(reference: referenceValues ?? values, binCount: options.histogramBins)
            }
            let statistics = WeightStatistics(values: values, reference: referenceValues, binning: binning)
            rows += statistics.metricRows(step: step, layer: layer, site: site)

            if options.msdTensors.contains(name), let previous, let previousEntry = previous.entries[name],
               previousEntry.shape == entry.shape {
                let before = try previous.tensor(name, shape: entry.shape)
                let msd = WeightStatistics.meanSquaredDisplacement(values, previous: before)
                rows.append(MetricSite(step: step, layer: layer, site: site).row(MetricName.msd, msd))
            }
            if options.spectra, entry.shape.count == 2,
               name.hasSuffix(".attention.dense.weight") || name.hasSuffix(".mlp.dense_4h_to_h.weight") {
                let sigma = try Spectrum.singularValues(values, rows: entry.shape[0], columns: entry.shape[1])
                rows += SpectralStatistics(singularValues: sigma, hiddenSize: checkpoint.config.hiddenSize)
                    .metricRows(step: step, layer: layer, site: site)
            }
        }
        if options.spectra {
            for layer in 0..<checkpoint.config.numLayers {
                for (head, sigma) in try ovSpectra(checkpoint: checkpoint, layer: layer).enumerated() {
                    rows += SpectralStatistics(singularValues: sigma, hiddenSize: checkpoint.config.hiddenSize)
                        .metricRows(step: step, layer: layer, site: Self.ovSite(layer: layer, head: head))
                }
            }
        }
        return rows
    }

    /// Singular values of every head's W_OV in `layer` (index = head).
    public func ovSpectra(checkpoint: Checkpoint, layer: Int) throws -> [[Double]] {
        let config = checkpoint.config
        let d = config.hiddenSize
        let heads = AttentionHeadWeights(
            qkvWeight: try checkpoint.tensor("gpt_neox.layers.\(layer).attention.query_key_value.weight", shape: [3 * d, d]),
            denseWeight: try checkpoint.tensor("gpt_neox.layers.\(layer).attention.dense.weight", shape: [d, d]),
            hiddenSize: d, numHeads: config.numHeads)
        return try (0..<config.numHeads).map { head in
            try Spectrum.ovSingularValues(wO: heads.output(head: head).map(Double.init),
                                          wV: heads.weight(.value, head: head).map(Double.init),
                                          hidden: d, headDim: heads.headDim)
        }
    }
}
