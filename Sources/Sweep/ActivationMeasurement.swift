import Dispatch
import Evaluation
import Foundation
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

/// Where the CKA reference's rows come from while a checkpoint runs.
enum ReferenceRows {
    /// This checkpoint is the reference: it is compared with itself.
    case itself
    /// This checkpoint is the reference and its rows also go to the cache being written.
    case writing(SweepReferenceCache.Writer)
    /// Read back from the reference activation cache.
    case cache(SweepReferenceCache)
    /// Recomputed: the reference model runs on the same batch in lockstep (`SiteHandoff`).
    case model(NeoXModel)
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
    let ckaMinibatch: Int?
    private var statistics: [OutlierStatistics]
    /// Created at a site's first rows and finished after its last (then nil), so with all tokens
    /// in one pass only one site's d×d products exist at a time.
    private var accumulators: [CKAAccumulator?]
    private var ckaResults: [CKAResult?]
    private var nll = NLLTotal()
    /// T of the sequences measured (every sequence has it), for `argmax_sequence` / `argmax_position`.
    private var sequenceLength: Int?

    init(model: NeoXModel, step: Int, sites: [MeasuredSite], probes: Set<SweepProbe>, ckaMinibatch: Int?, topK: Int) {
        self.model = model
        self.step = step
        self.sites = sites
        self.probes = probes
        self.topK = topK
        self.ckaMinibatch = ckaMinibatch
        let d = model.config.hiddenSize
        statistics = probes.contains(.outliers) ? sites.map { _ in OutlierStatistics(dimension: d) } : []
        accumulators = Array(repeating: nil, count: sites.count)
        ckaResults = Array(repeating: nil, count: sites.count)
    }

    mutating func run(sequences: [[Int32]], tokensPerBatch: Int, reference: ReferenceRows?, progress: (Int) -> Void) throws {
        guard let T = sequences.first?.count, T > 0 else { return }
        sequenceLength = T
        let hooks = sites.map(\.hook)
        let index = Dictionary(uniqueKeysWithValues: hooks.enumerated().map { ($1, $0) })
        let wantCKA = probes.contains(.cka)
        var writer: SweepReferenceCache.Writer? = nil
        if case .writing(let w) = reference { writer = w }
        let wantActivations = !statistics.isEmpty || wantCKA || writer != nil
        var points = wantActivations ? hooks : []
        let wantPerplexity = probes.contains(.perplexity)
        if wantPerplexity { points.append(.lnFinalNormalized) }
        let plan = try ForwardPlan(config: model.config, hooks: points)
        let perBatch = max(1, tokensPerBatch / T)
        // The observer is an escaping closure: it works on local state, moved back at the end.
        var statistics = self.statistics, accumulators = self.accumulators, ckaResults = self.ckaResults, nll = self.nll
        self.statistics = []
        self.accumulators = []
        let model = self.model, d = model.config.hiddenSize, minibatch = ckaMinibatch
        var start = 0
        while start < sequences.count {
            let batch = Array(sequences[start..<min(sequences.count, start + perBatch)])
            let offset = start * T, last = start + batch.count == sequences.count
            var scoredRows: [Int] = []
            var targets: [Int32] = []
            if wantPerplexity {
                for (b, sequence) in batch.enumerated() {
                    for t in 0..<(T - 1) { scoredRows.append(b * T + t); targets.append(sequence[t + 1]) }
                }
            }
            var handoff: SiteHandoff? = nil
            if wantCKA, case .model(let referenceModel) = reference {
                handoff = try SiteHandoff(reference: referenceModel, batch: batch, hooks: hooks)
            }
            do {
                _ = try model.forward(tokens: batch, plan: plan) { hook, shape, values in
                    if hook == .lnFinalNormalized {
                        let scores = try VocabularyScorer.score(model: model, normalized: values, rows: scoredRows, targets: targets, sequenceLength: T)
                        for score in scores { nll.nllSum -= score.logProbability }
                        nll.tokens += scores.count
                        return
                    }
                    guard let k = index[hook] else { return }
                    let rows = shape[0] * shape[1]
                    if !statistics.isEmpty { statistics[k].add(rows: values, rowCount: rows, tokenOffset: offset) }
                    try writer?.append(hook: hook.name, values: values)
                    guard wantCKA else { return }
                    if accumulators[k] == nil { accumulators[k] = CKAAccumulator(dimX: d, dimY: d, minibatchSize: minibatch) }
                    switch reference {
                    case .cache(let cache)?:
                        try cache.withRows(hook: hook.name, offset: offset, count: rows) { accumulators[k]!.add(x: $0, y: values, rows: rows) }
                    case .model?:
                        try handoff!.take(k) { accumulators[k]!.add(x: $0, y: values, rows: rows) }
                    case .itself?, .writing?, nil:
                        accumulators[k]!.add(x: values, y: values, rows: rows)
                    }
                    if last {
                        ckaResults[k] = accumulators[k]!.result()
                        accumulators[k] = nil
                    }
                }
            } catch {
                handoff?.cancel()
                throw error
            }
            try handoff?.finish()
            start += batch.count
            progress(start * T)
        }
        self.statistics = statistics
        self.accumulators = accumulators
        self.ckaResults = ckaResults
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
            rows[.cka] = zip(sites, ckaResults).flatMap { at, result in
                (result ?? CKAAccumulator(dimX: 1, dimY: 1).result()).metricRows(step: step, layer: at.layer, site: at.site.rawValue)
            }
        }
        if probes.contains(.perplexity) { rows[.perplexity] = nll.metricRows(step: step, site: SweepNames.evaluationTokensSite) }
        return rows
    }
}

/// The CKA reference's activations of one batch, recomputed in lockstep with the checkpoint's:
/// the reference model runs on its own thread and hands each site's rows over through one buffer;
/// the checkpoint's observer takes site k when it reaches it. The reference computes site k+1
/// while the checkpoint uses site k, so memory is one site of one batch and no file is written.
final class SiteHandoff: @unchecked Sendable {
    private let condition = NSCondition()
    private var buffer: [Float] = []
    /// The site index the buffer holds, nil when empty.
    private var held: Int? = nil
    private var failure: (any Error)? = nil
    private var cancelled = false
    private var done = false

    init(reference: NeoXModel, batch: [[Int32]], hooks: [HookPoint]) throws {
        let plan = try ForwardPlan(config: reference.config, hooks: hooks)
        let index = Dictionary(uniqueKeysWithValues: hooks.enumerated().map { ($1, $0) })
        Thread.detachNewThread { [self] in
            do {
                _ = try reference.forward(tokens: batch, plan: plan) { hook, _, values in
                    guard let k = index[hook] else { return }
                    try self.put(k, values)
                }
            } catch {
                condition.lock()
                if failure == nil && !cancelled { failure = error }
                condition.unlock()
            }
            condition.lock()
            done = true
            condition.broadcast()
            condition.unlock()
        }
    }

    private struct Cancelled: Error {}

    /// Reference side: waits for the buffer to be free, then fills it with site k.
    private func put(_ k: Int, _ values: UnsafeBufferPointer<Float>) throws {
        condition.lock()
        defer { condition.unlock() }
        while held != nil && !cancelled { condition.wait() }
        if cancelled { throw Cancelled() }
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: values)
        held = k
        condition.broadcast()
    }

    /// Checkpoint side: waits for site k, lets `body` read it, frees the buffer.
    func take(_ k: Int, _ body: (UnsafeBufferPointer<Float>) throws -> Void) throws {
        condition.lock()
        defer { condition.unlock() }
        while held == nil && failure == nil && !done { condition.wait() }
        if let failure { throw failure }
        guard held == k else {
            throw SweepError(.internal, "internal: the reference produced site \(held.map(String.init) ?? "none") while the checkpoint reached site \(k)")
        }
        try buffer.withUnsafeBufferPointer(body)
        held = nil
        condition.broadcast()
    }

    /// Stops the reference (the checkpoint's pass failed) and waits for its thread.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        while !done { condition.wait() }
        condition.unlock()
    }

    /// Waits for the reference's pass to end; rethrows its error.
    func finish() throws {
        condition.lock()
        defer { condition.unlock() }
        while !done { condition.wait() }
        if let failure { throw failure }
    }
}
