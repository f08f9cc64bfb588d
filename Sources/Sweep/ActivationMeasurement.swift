import Evaluation
import NeoX
import ProbeStats
import Results

/// A per-layer activation site the sweep measures, and the engine hook that produces it.
struct MeasuredSite: Sendable, Equatable {
    let layer: Int
    let site: ActivationSite

    var hook: HookPoint { site.hook(layer: layer) }

    /// Every site of every layer, layer by layer: the order of the rows, the cache's hooks and
    /// the accumulators.
    static func all(layers: Int) -> [MeasuredSite] {
        (0..<layers).flatMap { layer in ActivationSite.allCases.map { MeasuredSite(layer: layer, site: $0) } }
    }
}

/// Outliers, CKA and perplexity of one checkpoint from a single streamed forward pass over the
/// evaluation tokens: activations are consumed by the observer as they are produced and never stored.
struct ActivationMeasurement {
    let model: NeoXModel
    let step: Int
    let sites: [MeasuredSite]
    /// The forward-pass probes asked for (outliers, cka, perplexity).
    let probes: Set<SweepProbe>
    let topK: Int
    private var statistics: [OutlierStatistics]
    private var accumulators: [CKAAccumulator]
    private var nll = NLLTotal()
    /// T of the sequences measured (every sequence has it), for `argmax_sequence` / `argmax_position`.
    private var sequenceLength: Int?

    init(model: NeoXModel, step: Int, sites: [MeasuredSite], probes: Set<SweepProbe>, ckaMinibatch: Int?, topK: Int) {
        self.model = model
        self.step = step
        self.sites = sites
        self.probes = probes
        self.topK = topK
        let d = model.config.hiddenSize
        statistics = probes.contains(.outliers) ? sites.map { _ in OutlierStatistics(dimension: d) } : []
        accumulators = probes.contains(.cka) ? sites.map { _ in CKAAccumulator(dimX: d, dimY: d, minibatchSize: ckaMinibatch) } : []
    }

    mutating func run(sequences: [[Int32]], tokensPerBatch: Int, cache: SweepReferenceCache?, writer: SweepReferenceCache.Writer?,
                      progress: (Int) -> Void) throws {
        guard let T = sequences.first?.count, T > 0 else { return }
        sequenceLength = T
        let hooks = sites.map(\.hook)
        let index = Dictionary(uniqueKeysWithValues: hooks.enumerated().map { ($1, $0) })
        let wantActivations = !statistics.isEmpty || !accumulators.isEmpty || writer != nil
        var points = wantActivations ? hooks : []
        let wantPerplexity = probes.contains(.perplexity)
        if wantPerplexity { points.append(.lnFinalNormalized) }
        let plan = try ForwardPlan(config: model.config, hooks: points)
        let perBatch = max(1, tokensPerBatch / T)
        // The observer is an escaping closure: it works on local state, moved back at the end.
        var statistics = self.statistics, accumulators = self.accumulators, nll = self.nll
        self.statistics = []
        self.accumulators = []
        let model = self.model
        var start = 0
        while start < sequences.count {
            let batch = Array(sequences[start..<min(sequences.count, start + perBatch)])
            let offset = start * T
            var scoredRows: [Int] = []
            var targets: [Int32] = []
            if wantPerplexity {
                for (b, sequence) in batch.enumerated() {
                    for t in 0..<(T - 1) { scoredRows.append(b * T + t); targets.append(sequence[t + 1]) }
                }
            }
            _ = try model.forward(tokens: batch, plan: plan) { hook, shape, values in
                if hook == .lnFinalNormalized {
                    let scores = try VocabularyScorer.score(model: model, normalized: values, rows: scoredRows, targets: targets)
                    for score in scores { nll.nllSum -= score.logProbability }
                    nll.tokens += scores.count
                    return
                }
                guard let k = index[hook] else { return }
                let rows = shape[0] * shape[1]
                if !statistics.isEmpty { statistics[k].add(rows: values, rowCount: rows, tokenOffset: offset) }
                try writer?.append(hook: hook.name, values: values)
                if !accumulators.isEmpty {
                    if writer != nil {
                        accumulators[k].add(x: values, y: values, rows: rows)
                    } else {
                        try cache!.withRows(hook: hook.name, offset: offset, count: rows) { reference in
                            accumulators[k].add(x: reference, y: values, rows: rows)
                        }
                    }
                }
            }
            start += batch.count
            progress(start * T)
        }
        self.statistics = statistics
        self.accumulators = accumulators
        self.nll = nll
    }

    /// The rows of each probe this measurement was asked for (none for the others).
    func rows() -> [SweepProbe: [MetricRow]] {
        var rows: [SweepProbe: [MetricRow]] = [:]
        if probes.contains(.outliers) {
            rows[.outliers] = zip(sites, statistics).flatMap { at, statistics in
                statistics.metricRows(step: step, layer: at.layer, site: at.site.rawValue, topK: topK, sequenceLength: sequenceLength)
            }
        }
        if probes.contains(.cka) {
            rows[.cka] = zip(sites, accumulators).flatMap { at, accumulator in
                accumulator.result().metricRows(step: step, layer: at.layer, site: at.site.rawValue)
            }
        }
        if probes.contains(.perplexity) { rows[.perplexity] = nll.metricRows(step: step, site: SweepNames.evaluationTokensSite) }
        return rows
    }
}
