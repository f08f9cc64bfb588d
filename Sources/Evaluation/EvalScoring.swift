import Formats
import Foundation
import NeoX

/// One forward input and the tokens it must score: `targets[i]` is predicted by the logits at
/// input `position` (so it is the token that follows `tokens[position]`).
///
/// Both evaluators reduce their work to these jobs: a LAMBADA request is one job whose targets are
/// the continuation; a perplexity window is one job whose targets are the tokens it scores.
public struct ScoringJob: Sendable, Equatable {
    public struct Target: Sendable, Equatable {
        /// Input position whose logits predict `token` (0-based, `< tokens.count`).
        public var position: Int
        public var token: Int32
        public init(position: Int, token: Int32) {
            self.position = position
            self.token = token
        }
    }

    public var tokens: [Int32]
    public var targets: [Target]

    public init(tokens: [Int32], targets: [Target]) {
        self.tokens = tokens
        self.targets = targets
    }
}

/// The score of one target token.
public struct TokenScore: Sendable, Equatable {
    /// `log softmax(logits)[target]` over the whole vocabulary (`LogSoftmax`: fp32 exponentials summed in fp64).
    public var logProbability: Double
    /// Whether the target is the argmax of the logits (first maximum on ties, as `torch.argmax`).
    public var isGreedy: Bool

    public init(logProbability: Double, isGreedy: Bool) {
        self.logProbability = logProbability
        self.isGreedy = isGreedy
    }
}

/// Runs scoring jobs through a model as fast as the CPU allows while never materialising full
/// `[B, T, V]` logits.
///
/// Why it is shaped like this:
/// - Unembedding costs 2·V·d FLOPs per row (V ≈ 50k), far more than a small model's blocks, so
///   logits are computed only for rows that are actually scored, `rowsPerChunk` rows at a time,
///   from the captured `ln_final.hook_normalized` (streamed through the forward observer, so the
///   activation is never copied).
/// - Jobs are sorted by length and packed into batches of similar length, right-padded: with
///   causal attention a padded position can never influence an earlier one, so padding changes
///   no scored logit, and large batches make the GEMMs efficient.
/// - Log-softmax and argmax over the vocabulary run on all cores, one row per task.
/// - `NeoXModel.forward` is safe to call from several threads at once (the model is immutable),
///   but one stream of large batches is used instead: the engine already spreads a batch over
///   all cores, and concurrent small passes would only compete for them.
public struct BatchScorer: Sendable {
    public let model: NeoXModel
    /// Upper bound on padded tokens (B·T) per forward pass; bounds activation memory.
    public var tokensPerBatch: Int
    /// Rows unembedded at once (each needs V floats).
    public var rowsPerChunk: Int
    /// Token used to right-pad shorter sequences of a batch (never scored, never attended to).
    public var paddingToken: Int32 = 0
    /// Called after each forward pass with the input tokens it scored (for a progress display;
    /// nil: nothing is reported).
    public var progress: (@Sendable (_ tokens: Int) -> Void)? = nil

    /// `tokensPerBatch` defaults to what keeps the forward pass's working buffers near 64 MiB
    /// (they need about (8·d + ff) floats per token).
    public init(model: NeoXModel, tokensPerBatch: Int? = nil, rowsPerChunk: Int = 128) {
        self.model = model
        let perToken = 4 * (8 * model.config.hiddenSize + model.config.intermediateSize)
        self.tokensPerBatch = max(1, tokensPerBatch ?? (64 << 20) / perToken)
        self.rowsPerChunk = max(1, rowsPerChunk)
    }

    /// Scores every job; result `i` holds job `i`'s target scores in target order.
    /// - Throws: `EvalError` for a job longer than the model's context or a target outside its
    ///   input; engine errors (e.g. token ids outside the vocabulary) propagate.
    public func score(_ jobs: [ScoringJob]) throws -> [[TokenScore]] {
        let maxLength = model.config.maxPositionEmbeddings
        for (j, job) in jobs.enumerated() {
            guard job.tokens.count <= maxLength else {
                throw EvalError(.invalidInput, "input \(j) has \(job.tokens.count) tokens, more than the model's context (max_position_embeddings = \(maxLength))")
            }
            for target in job.targets where target.position < 0 || target.position >= job.tokens.count {
                throw EvalError(.invalidInput, "input \(j): target position \(target.position) is outside 0..<\(job.tokens.count)")
            }
        }
        var results = jobs.map { [TokenScore](repeating: TokenScore(logProbability: 0, isGreedy: true),
                                                count: $0.targets.count) }
        // Longest first, so the first batch shows the peak memory early; stable for determinism.
        let order = jobs.indices.filter { !jobs[$0].targets.isEmpty }
            .sorted { (jobs[$0].tokens.count, $1) > (jobs[$1].tokens.count, $0) }
        var start = 0
        while start < order.count {
            let length = model.batchInvariantLength(jobs[order[start]].tokens.count)
            let batchSize = max(1, tokensPerBatch / length)
            let batch = Array(order[start..<min(order.count, start + batchSize)])
            let scores = try scoreBatch(batch.map { jobs[$0] }, paddedLength: length)
            for (k, j) in batch.enumerated() { results[j] = scores[k] }
            start += batch.count
            progress?(batch.reduce(0) { $0 + jobs[$1].tokens.count })
        }
        return results
    }

    /// One forward pass over jobs right-padded to `paddedLength` (the longest of them).
    func scoreBatch(_ jobs: [ScoringJob], paddedLength T: Int) throws -> [[TokenScore]] {
        let inputs = jobs.map { $0.tokens + [Int32](repeating: paddingToken, count: T - $0.tokens.count) }
        let rows = jobs.enumerated().flatMap { b, job in job.targets.map { b * T + $0.position } }
        let targets = jobs.flatMap { $0.targets.map(\.token) }
        var flat: [TokenScore] = []
        let plan = try ForwardPlan(config: model.config, hooks: [.lnFinalNormalized])
        _ = try model.forward(tokens: inputs, plan: plan) { hook, _, values in
            guard hook == .lnFinalNormalized else { return }
            flat = try VocabularyScorer.score(model: model, normalized: values, rows: rows, targets: targets,
                                              sequenceLength: T, rowsPerChunk: rowsPerChunk)
        }
        guard flat.count == targets.count else {
            throw EvalError(.internal, "internal: the forward pass produced no final LayerNorm output")
        }
        var out: [[TokenScore]] = []
        out.reserveCapacity(jobs.count)
        var next = 0
        for job in jobs {
            out.append(Array(flat[next..<next + job.targets.count]))
            next += job.targets.count
        }
        return out
    }
}

/// Log-probabilities of chosen rows of final-LayerNorm output, chunk by chunk.
public enum VocabularyScorer {
    /// - Parameters:
    ///   - normalized: `ln_final.hook_normalized` rows, `[N, d]` row-major.
    ///   - rows: which of the N rows to score; `targets[i]` is row `rows[i]`'s target id.
    ///   - sequenceLength: T of the `[B, T]` rows, so each row's logits are computed at its own
    ///     position (`NeoXModel.unembed`): a row's score then does not depend on the other rows.
    /// - Returns: one score per requested row, in order.
    public static func score(model: NeoXModel, normalized: UnsafeBufferPointer<Float>, rows: [Int],
                             targets: [Int32], sequenceLength: Int, rowsPerChunk: Int = 128) throws -> [TokenScore] {
        precondition(rows.count == targets.count)
        let d = model.config.hiddenSize, V = model.config.vocabSize
        let chunk = max(1, min(rowsPerChunk, rows.count))
        var gathered = [Float](repeating: 0, count: chunk * d)
        var logits = [Float](repeating: 0, count: chunk * V)
        var scores: [TokenScore] = []
        scores.reserveCapacity(rows.count)
        var start = 0
        while start < rows.count {
            let count = min(chunk, rows.count - start)
            let positions = rows[start..<(start + count)].map { $0 % max(1, sequenceLength) }
            for k in 0..<count {
                let source = rows[start + k] * d
                guard source + d <= normalized.count else {
                    throw EvalError(.internal, "internal: row \(rows[start + k]) outside the captured activation")
                }
                for i in 0..<d { gathered[k * d + i] = normalized[source + i] }
            }
            try gathered.withUnsafeBufferPointer { g in
                try logits.withUnsafeMutableBufferPointer {
                    try model.unembed(normalizedHidden: g, rowCount: count, into: $0, layout: .positions(positions))
                }
            }
            let chunkTargets = Array(targets[start..<start + count])
            for t in chunkTargets where t < 0 || Int(t) >= V {
                throw EvalError(.invalidInput, "target token id \(t) is outside the vocabulary (0..<\(V))")
            }
            scores.append(contentsOf: logits.withUnsafeBufferPointer { scoreRows($0, count: count, vocab: V, targets: chunkTargets) })
            start += count
        }
        return scores
    }

    /// Log-softmax at the target and greedy check for `count` rows of `vocab` logits, in parallel.
    static func scoreRows(_ logits: UnsafeBufferPointer<Float>, count: Int, vocab V: Int, targets: [Int32]) -> [TokenScore] {
        let out = UnsafeMutableBufferPointer<TokenScore>.allocate(capacity: count)
        defer { out.deallocate() }
        let base = Int(bitPattern: logits.baseAddress!), outBase = Int(bitPattern: out.baseAddress!)
        let workers = min(count, ProcessInfo.processInfo.activeProcessorCount)
        let run: @Sendable (Int) -> Void = { worker in
            let logits = UnsafePointer<Float>(bitPattern: base)!
            let out = UnsafeMutablePointer<TokenScore>(bitPattern: outBase)!
            var r = worker
            while r < count {
                let row = UnsafeBufferPointer(start: logits + r * V, count: V)
                let summary = LogSoftmax.summarize(row)
                let target = Int(targets[r])
                (out + r).initialize(to: TokenScore(logProbability: summary.logProbability(of: row[target]),
                                                    isGreedy: summary.argmax == target))
                r += workers
            }
        }
        if workers <= 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: run) }
        return Array(out)
    }
}

/// The one error type of the Evaluation module: a problem with evaluation inputs or settings.
public struct EvalError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable, Equatable {
        /// A setting is out of range (window, stride, limits).
        case invalidSetting
        /// An input does not fit the model (too long, a position or token out of range, none at all).
        case invalidInput
        /// A broken invariant of the evaluator itself (a bug, never bad input).
        case `internal`
    }

    /// An evaluator setting an error can be about. Callers that expose settings under other names
    /// (a command line's flags) use it to say which of theirs was wrong.
    public enum Setting: String, Sendable, Equatable {
        /// `StridedWindows.window` / `PerplexityCorpus.Windowing.window`.
        case window
        /// `StridedWindows.stride` / `PerplexityCorpus.Windowing.stride`.
        case stride
        /// `PerplexityCorpus.Selection.start` / `end`: which documents or rows.
        case selection
        /// `PerplexityCorpus.Selection.limit` (documents or rows), or LAMBADA's example limit.
        case limit
        /// `PerplexityCorpus.Selection.maxTokens`.
        case maxTokens
        /// `PerplexityCorpus.Windowing.endOfDocument`.
        case endOfDocument
    }

    public let kind: Kind
    public let message: String
    /// The setting at fault, for `.invalidSetting` errors (and inputs a setting selected).
    public let setting: Setting?

    public init(_ kind: Kind, setting: Setting? = nil, _ message: String) {
        self.kind = kind
        self.setting = setting
        self.message = message
    }

    public var description: String { message }
}
