import Evaluation
import ProbeStats
import Results

/// The adapters that turn statistics into `step,layer,site,metric,value` rows: the statistics
/// types know nothing of the results schema, the sweep knows both.

/// Where a group of rows was measured; every adapter names only metric and value through it.
struct MetricSite {
    let step: Int
    let layer: Int?
    let site: String

    func row(_ metric: String, _ value: Double) -> MetricRow {
        MetricRow(step: step, layer: layer, site: site, metric: metric, value: value)
    }

    func rows(_ values: KeyValuePairs<String, Double>) -> [MetricRow] {
        values.map { row($0.key, $0.value) }
    }
}

extension CKAResult {
    /// Rows `cka`, `cka_tokens` and, when present, `cka_debiased`, `cka_debiased_tokens`.
    public func metricRows(step: Int, layer: Int?, site: String) -> [MetricRow] {
        let at = MetricSite(step: step, layer: layer, site: site)
        var rows = at.rows([MetricName.cka: cka, MetricName.ckaTokens: Double(tokenCount)])
        if let debiasedCKA {
            rows += at.rows([MetricName.ckaDebiased: debiasedCKA, MetricName.ckaDebiasedTokens: Double(debiasedTokenCount)])
        }
        return rows
    }
}

extension OutlierStatistics {
    /// Long-form rows for this site. Undefined values (no tokens, constant data) are omitted.
    /// With `sequenceLength` (the evaluation sequences' T), the flat `argmax_token` is also given
    /// as `argmax_sequence` and `argmax_position`.
    public func metricRows(step: Int, layer: Int?, site: String, topK: Int = 8, sequenceLength: Int? = nil) -> [MetricRow] {
        guard tokenCount > 0 else { return [] }
        let at = MetricSite(step: step, layer: layer, site: site)
        var rows = at.rows([
            MetricName.tokenCount: Double(tokenCount),
            MetricName.maxAbs: maxAbs,
            MetricName.argmaxDim: Double(argmaxDim),
            MetricName.argmaxToken: Double(argmaxToken),
            MetricName.meanNorm: meanNorm,
        ])
        if let T = sequenceLength, T > 0, argmaxToken >= 0 {
            rows += at.rows([MetricName.argmaxSequence: Double(argmaxToken / T), MetricName.argmaxPosition: Double(argmaxToken % T)])
        }
        if let kurtosis { rows.append(at.row(MetricName.kurtosis, kurtosis)) }
        if let best = maxDimensionKurtosis {
            rows += at.rows([MetricName.maxDimKurtosis: best.value, MetricName.maxDimKurtosisDim: Double(best.dim)])
        }
        if nonFiniteCount > 0 { rows.append(at.row(MetricName.nonFiniteCount, Double(nonFiniteCount))) }
        for (rank, entry) in topDimensions(topK).enumerated() {
            rows += at.rows([MetricName.topDim(rank + 1): Double(entry.dim), MetricName.topMaxAbs(rank + 1): entry.maxAbs])
        }
        return rows
    }
}

extension SpectralStatistics {
    /// Rows `effective_rank`, `per`, `spectral_norm`.
    public func metricRows(step: Int, layer: Int?, site: String) -> [MetricRow] {
        MetricSite(step: step, layer: layer, site: site)
            .rows([MetricName.effectiveRank: effectiveRank, MetricName.per: per, MetricName.spectralNorm: spectralNorm])
    }
}

extension WeightStatistics {
    /// Rows `frobenius_norm`, `mean`, `std`, `max_abs`, `kurtosis`, `distance_from_reference`,
    /// `hist_range`, `hist_underflow`, `hist_overflow`, `hist_bin_<i>` (those that are defined).
    public func metricRows(step: Int, layer: Int?, site: String) -> [MetricRow] {
        let at = MetricSite(step: step, layer: layer, site: site)
        var rows = at.rows([MetricName.frobeniusNorm: frobeniusNorm, MetricName.mean: mean, MetricName.std: std, MetricName.maxAbs: maxAbs])
        if let kurtosis { rows.append(at.row(MetricName.kurtosis, kurtosis)) }
        if let distanceFromReference { rows.append(at.row(MetricName.distanceFromReference, distanceFromReference)) }
        if let histogram {
            rows += at.rows([
                MetricName.histRange: histogram.binning.range,
                MetricName.histUnderflow: Double(histogram.underflow),
                MetricName.histOverflow: Double(histogram.overflow),
            ])
            for (index, count) in histogram.counts.enumerated() {
                rows.append(at.row(MetricName.histBin(index, of: histogram.binning.binCount), Double(count)))
            }
        }
        return rows
    }
}

extension NLLTotal {
    /// Model-wide rows `perplexity`, `nll`, `token_count` of `site`.
    public func metricRows(step: Int, site: String) -> [MetricRow] {
        MetricSite(step: step, layer: nil, site: site)
            .rows([MetricName.perplexity: perplexity, MetricName.nll: nll, MetricName.tokenCount: Double(tokens)])
    }
}

extension LambadaResult {
    /// Model-wide rows `acc`, `perplexity`, `example_count` of the `lambada` site.
    public func metricRows(step: Int) -> [MetricRow] {
        MetricSite(step: step, layer: nil, site: SweepNames.lambadaSite)
            .rows([MetricName.acc: acc, MetricName.perplexity: perplexity, SweepNames.exampleCount: Double(n)])
    }
}
