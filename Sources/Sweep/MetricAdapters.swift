import Formats
import NeoX
import ProbeStats
import Results

/// The adapters that turn statistics into `step,layer,site,metric,value` rows: the statistics
/// types know nothing of the results schema, the sweep knows both.

extension CKAResult {
    /// Rows `cka`, `cka_tokens` and, when present, `cka_debiased`, `cka_debiased_tokens`.
    public func metricRows(step: Int, layer: Int?, site: String) -> [MetricRow] {
        var rows = [
            MetricRow(step: step, layer: layer, site: site, metric: MetricName.cka, value: cka),
            MetricRow(step: step, layer: layer, site: site, metric: MetricName.ckaTokens, value: Double(tokenCount)),
        ]
        if let debiasedCKA {
            rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.ckaDebiased, value: debiasedCKA))
            rows.append(MetricRow(step: step, layer: layer, site: site, metric: MetricName.ckaDebiasedTokens,
                                  value: Double(debiasedTokenCount)))
        }
        return rows
    }
}

extension OutlierStatistics {
    /// Long-form rows for this site. Undefined values (no tokens, constant data) are omitted.
    public func metricRows(step: Int, layer: Int?, site: String, topK: Int = 8) -> [MetricRow] {
        guard tokenCount > 0 else { return [] }
        func row(_ metric: String, _ value: Double) -> MetricRow {
            MetricRow(step: step, layer: layer, site: site, metric: metric, value: value)
        }
        var rows = [
            row(MetricName.tokenCount, Double(tokenCount)),
            row(MetricName.maxAbs, maxAbs),
            row(MetricName.argmaxDim, Double(argmaxDim)),
            row(MetricName.argmaxToken, Double(argmaxToken)),
            row(MetricName.meanNorm, meanNorm),
        ]
        if let kurtosis { rows.append(row(MetricName.kurtosis, kurtosis)) }
        if let best = maxDimensionKurtosis {
            rows.append(row(MetricName.maxDimKurtosis, best.value))
            rows.append(row(MetricName.maxDimKurtosisDim, Double(best.dim)))
        }
        if nonFiniteCount > 0 { rows.append(row(MetricName.nonFiniteCount, Double(nonFiniteCount))) }
        for (rank, entry) in topDimensions(topK).enumerated() {
            rows.append(row(MetricName.topDim(rank + 1), Double(entry.dim)))
            rows.append(row(MetricName.topMaxAbs(rank + 1), entry.maxAbs))
        }
        return rows
    }
}

extension SpectralStatistics {
    /// Rows `effective_rank`, `per`, `spectral_norm`.
    public func metricRows(step: Int, layer: Int?, site: String) -> [MetricRow] {
        [
            MetricRow(step: step, layer: layer, site: site, metric: MetricName.effectiveRank, value: effectiveRank),
            MetricRow(step: step, layer: layer, site: site, metric: MetricName.per, value: per),
            MetricRow(step: step, layer: layer, site: site, metric: MetricName.spectralNorm, value: spectralNorm),
        ]
    }
}

extension WeightStatistics {
    /// Rows `frobenius_norm`, `mean`, `std`, `max_abs`, `kurtosis`, `distance_from_reference`,
    /// `hist_range`, `hist_underflow`, `hist_overflow`, `hist_bin_<i>` (those that are defined).
    public func metricRows(step: Int, layer: Int?, site: String) -> [MetricRow] {
        func row(_ metric: String, _ value: Double) -> MetricRow {
            MetricRow(step: step, layer: layer, site: site, metric: metric, value: value)
        }
        var rows = [
            row(MetricName.frobeniusNorm, frobeniusNorm),
            row(MetricName.mean, mean),
            row(MetricName.std, std),
            row(MetricName.maxAbs, maxAbs),
        ]
        if let kurtosis { rows.append(row(MetricName.kurtosis, kurtosis)) }
        if let distanceFromReference { rows.append(row(MetricName.distanceFromReference, distanceFromReference)) }
        if let histogram {
            rows.append(row(MetricName.histRange, histogram.binning.range))
            rows.append(row(MetricName.histUnderflow, Double(histogram.underflow)))
            rows.append(row(MetricName.histOverflow, Double(histogram.overflow)))
            for (index, count) in histogram.counts.enumerated() {
                rows.append(row(MetricName.histBin(index, of: histogram.binning.binCount), Double(count)))
            }
        }
        return rows
    }
}
