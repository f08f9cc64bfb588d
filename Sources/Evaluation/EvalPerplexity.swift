import Formats
import Foundation
import NeoX

/// Hugging Face's strided ("sliding window") perplexity convention for one token stream.
///
/// Windows are `[begin, min(begin + window, n))` for `begin = 0, stride, 2·stride, …`, stopping
/// at the first window that reaches the end. Window k scores the tokens `t` with
/// `max(previousEnd, begin + 1) ≤ t < end`: every token is scored at most once, with all the
/// left context its window holds (at least `window − stride` tokens once the first window is
/// past). The stream's first token is never scored (nothing predicts it); with
/// `stride == window` the first token of each later window is not scored either, exactly as in
/// HF's recipe.
public struct StridedWindows: Sendable, Equatable, CustomStringConvertible {
    public let window: Int
    public let stride: Int

    /// - Throws: `EvalError` unless `2 ≤ window` and `1 ≤ stride ≤ window`.
    public init(window: Int, stride: Int) throws {
        guard window >= 2 else {
            throw EvalError(.invalidSetting, setting: .window, "the window must be at least 2 tokens, got \(window)")
        }
        guard stride >= 1, stride <= window else {
            throw EvalError(.invalidSetting, setting: .stride, "the stride must be between 1 and the window (\(window)), got \(stride)")
        }
        self.window = window
        self.stride = stride
    }

    public var description: String {
        "sliding windows of \(window) tokens with stride \(stride) (Hugging Face strided perplexity): "
            + "each token after the stream's first is scored at most once, with the left context its window allows"
            + (stride == window ? "; with stride = window the first token of each window is not scored" : "")
    }

    /// The forward inputs that score `tokens` under this convention.
    public func jobs(for tokens: [Int32]) -> [ScoringJob] {
        let n = tokens.count
        var jobs: [ScoringJob] = []
        var begin = 0, previousEnd = 0
        while begin < n {
            let end = min(begin + window, n)
            let first = max(previousEnd, begin + 1)
            if first < end {
                let targets = (first..<end).map { ScoringJob.Target(position: $0 - begin - 1, token: tokens[$0]) }
                jobs.append(ScoringJob(tokens: Array(tokens[begin..<end]), targets: targets))
            }
            previousEnd = end
            if end == n { break }
            begin += stride
        }
        return jobs
    }
}

/// `StridedWindows` over a stream that arrives in pieces (documents of a packed corpus): it
/// yields exactly the jobs `jobs(for:)` gives for the whole stream, while holding only the
/// tokens from the current window's start on, so a corpus of any size is scored in bounded memory.
public struct StridedWindowStream: Sendable {
    public let windows: StridedWindows
    /// Tokens `[bufferStart, bufferStart + buffer.count)` of the stream.
    private var buffer: [Int32] = []
    private var bufferStart = 0
    private var begin = 0
    private var previousEnd = 0
    private var finished = false
    /// Tokens appended so far.
    public private(set) var count = 0

    public init(_ windows: StridedWindows) { self.windows = windows }

    /// Appends tokens and returns the windows they complete. A window is released only once a
    /// token past its end has arrived: only then is it known not to be the stream's last.
    public mutating func append(_ tokens: [Int32]) -> [ScoringJob] {
        precondition(!finished, "append after finish")
        buffer.append(contentsOf: tokens)
        count += tokens.count
        var jobs: [ScoringJob] = []
        while begin + windows.window < count {
            jobs.append(window(end: begin + windows.window))
            begin += windows.stride
            buffer.removeFirst(begin - bufferStart)
            bufferStart = begin
        }
        return jobs
    }

    /// The stream has ended: the last window, reaching its end (none if the stream is too short).
    public mutating func finish() -> [ScoringJob] {
        precondition(!finished, "finish called twice")
        finished = true
        guard begin < count, previousEnd < count else { return [] }
        let last = window(end: count)
        return last.targets.isEmpty ? [] : [last]
    }

    private mutating func window(end: Int) -> ScoringJob {
        let first = max(previousEnd, begin + 1)
        let tokens = Array(buffer[(begin - bufferStart)..<(end - bufferStart)])
        let targets = first < end
            ? (first..<end).map { ScoringJob.Target(position: $0 - begin - 1, token: buffer[$0 - bufferStart]) }
            : []
        previousEnd = end
        return ScoringJob(tokens: tokens, targets: targets)
    }
}

/// Pythia's training convention for a pre-tokenized row (e.g. 2049 tokens): the input is the row
/// without its last token, the targets the row shifted by one, so every token but the first is
/// scored with all previous tokens of the row as context.
public enum ShiftedRow {
    public static func job(for row: [Int32]) -> ScoringJob {
        let targets = (1..<max(1, row.count)).map { ScoringJob.Target(position: $0 - 1, token: row[$0]) }
        return ScoringJob(tokens: Array(row.dropLast()), targets: targets)
    }
}

/// Summed negative log-likelihood over some scored tokens.
public struct NLLTotal: Sendable, Equatable {
    public var tokens: Int = 0
    /// Σ −log p(token | context), nats, accumulated in Float64.
    public var nllSum: Double = 0

    public init(tokens: Int = 0, nllSum: Double = 0) {
        self.tokens = tokens
        self.nllSum = nllSum
    }

    /// Mean NLL per token (nats).
    public var nll: Double { tokens == 0 ? .nan : nllSum / Double(tokens) }
    /// `exp(nll)`.
    public var perplexity: Double { exp(nll) }

    public static func + (a: NLLTotal, b: NLLTotal) -> NLLTotal {
        NLLTotal(tokens: a.tokens + b.tokens, nllSum: a.nllSum + b.nllSum)
    }
}

/// Token-level perplexity over many streams, fed one at a time.
///
/// Jobs are buffered and scored in groups (so batches stay full across short documents) while
/// memory stays bounded by `flushTokens`, whatever the corpus size. Results are per owner (a
/// document or row index chosen by the caller).
public struct PerplexityAccumulator {
    public let scorer: BatchScorer
    /// Buffered input tokens that trigger scoring.
    public var flushTokens: Int
    public private(set) var totals: [Int: NLLTotal] = [:]
    private var pending: [(owner: Int, job: ScoringJob)] = []
    private var pendingTokens = 0

    public init(scorer: BatchScorer, flushTokens: Int? = nil) {
        self.scorer = scorer
        self.flushTokens = flushTokens ?? max(4 * scorer.tokensPerBatch, 2 * scorer.model.config.maxPositionEmbeddings)
    }

    /// Adds (and possibly scores) one job on behalf of `owner`.
    public mutating func add(_ job: ScoringJob, owner: Int) throws {
        if totals[owner] == nil { totals[owner] = NLLTotal() }
        guard !job.targets.isEmpty else { return }
        pending.append((owner, job))
        pendingTokens += job.tokens.count
        if pendingTokens >= flushTokens { try flush() }
    }

    /// Scores everything still buffered.
    public mutating func flush() throws {
        guard !pending.isEmpty else { return }
        let scores = try scorer.score(pending.map(\.job))
        for (k, item) in pending.enumerated() {
            var total = totals[item.owner] ?? NLLTotal()
            for score in scores[k] { total.nllSum -= score.logProbability }
            total.tokens += scores[k].count
            totals[item.owner] = total
        }
        pending.removeAll(keepingCapacity: true)
        pendingTokens = 0
    }

    /// Flushes and returns the grand total and the per-owner totals, owners ascending.
    public mutating func finish() throws -> (total: NLLTotal, perOwner: [(owner: Int, total: NLLTotal)]) {
        try flush()
        let perOwner = totals.keys.sorted().map { ($0, totals[$0]!) }
        return (perOwner.reduce(NLLTotal()) { $0 + $1.1 }, perOwner)
    }
}
