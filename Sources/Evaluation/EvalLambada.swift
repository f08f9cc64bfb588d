import Corpus
import Formats
import Foundation
import NeoX
import Tokenizers

/// A LAMBADA example as token ids, encoded exactly as lm-evaluation-harness 0.4.5 encodes a
/// `loglikelihood` request for a causal Hugging Face model (`TemplateLM.loglikelihood` and
/// `_encode_pair`).
public struct LambadaRequest: Sendable, Equatable {
    public var context: [Int32]
    public var continuation: [Int32]

    public init(context: [Int32], continuation: [Int32]) {
        self.context = context
        self.continuation = continuation
    }

    /// The harness's encoding of (context, continuation):
    /// - empty context: `[endOfText]` as context, `encode(continuation)`;
    /// - otherwise the context's trailing whitespace (Python `str.rstrip()`) moves to the start of
    ///   the continuation, then `whole = encode(context + continuation)`,
    ///   `context = encode(context)` and `continuation = whole[len(context)...]`, so the
    ///   continuation's tokens are those the model sees after the context in one piece of text
    ///   (BPE merges across the boundary included).
    public static func encode(context: String, continuation: String, endOfText: Int32,
                              encode: (String) throws -> [Int32]) rethrows -> LambadaRequest {
        if context.isEmpty { return LambadaRequest(context: [endOfText], continuation: try encode(continuation)) }
        let (kept, trailing) = splitTrailingPythonWhitespace(context)
        let whole = try encode(kept + trailing + continuation)
        let contextIDs = try encode(kept)
        return LambadaRequest(context: contextIDs, continuation: Array(whole.dropFirst(contextIDs.count)))
    }

    /// Every example's request, in order, encoded in parallel (the tokenizer is thread-safe).
    /// The one place LAMBADA text becomes token ids, for the evaluator and the sweep alike.
    public static func encode(_ examples: [LambadaExample], tokenizer: any TextTokenizer,
                              endOfText: Int32) throws -> [LambadaRequest] {
        try EvalConcurrency.map(examples) { example in
            try encode(context: example.context, continuation: example.target, endOfText: endOfText,
                       encode: { try tokenizer.encode($0) })
        }
    }

    /// `(s.rstrip(), the stripped tail)` with Python's definition of whitespace: Unicode
    /// White_Space plus U+001C…U+001F (which `str.isspace` also accepts), on code points.
    public static func splitTrailingPythonWhitespace(_ s: String) -> (String, String) {
        let scalars = s.unicodeScalars
        var end = scalars.endIndex
        while end > scalars.startIndex {
            let previous = scalars.index(before: end)
            let scalar = scalars[previous]
            guard scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value) else { break }
            end = previous
        }
        return (String(scalars[..<end]), String(scalars[end...]))
    }

    /// The model input and the scored positions, as `HFLM._loglikelihood_tokens` builds them:
    /// `input = (context + continuation)[-(maxLength + 1):][:-1]` (left truncation), and the last
    /// `continuation.count` positions of the input predict the continuation.
    public func job(maxLength: Int) throws -> ScoringJob {
        guard continuation.count <= maxLength else {
            throw EvalError(.invalidInput, "the target is \(continuation.count) tokens, longer than the model's context (\(maxLength))")
        }
        let full = context + continuation
        let input = Array(full.suffix(maxLength + 1).dropLast())
        let first = input.count - continuation.count
        let targets = continuation.enumerated().map { ScoringJob.Target(position: first + $0.offset, token: $0.element) }
        return ScoringJob(tokens: input, targets: targets)
    }
}

/// The score of one LAMBADA example.
public struct LambadaExampleScore: Sendable, Equatable {
    /// Position of the example in the evaluated list (file order).
    public var index: Int
    /// Sum over the target's tokens of their log-probability (the harness's `ll`).
    public var logLikelihood: Double
    /// Every target token is the argmax (the harness's `is_greedy`, the example's `acc`).
    public var isGreedy: Bool
    public var contextTokens: Int
    public var targetTokens: Int
    /// The input was left-truncated to the model's context.
    public var truncated: Bool
}

/// LAMBADA results with the harness's aggregations.
public struct LambadaResult: Sendable {
    /// Fraction of examples whose whole target is greedy-decoded.
    public var acc: Double
    /// `exp(-mean(logLikelihood))` over examples (the harness's `perplexity` aggregation).
    public var perplexity: Double
    /// Mean of the per-example summed log-likelihoods.
    public var meanLogLikelihood: Double
    /// Number of examples.
    public var n: Int
    /// Examples whose input had to be left-truncated.
    public var truncatedCount: Int
    /// Total tokens run forward (after truncation).
    public var inputTokens: Int
    public var examples: [LambadaExampleScore]

    /// Aggregates scores the way lm-evaluation-harness does (plain sums, in order).
    public init(examples: [LambadaExampleScore], inputTokens: Int) {
        self.examples = examples
        n = examples.count
        let lls = examples.map(\.logLikelihood)
        meanLogLikelihood = n == 0 ? .nan : lls.reduce(0, +) / Double(n)
        perplexity = exp(-meanLogLikelihood)
        acc = n == 0 ? .nan : Double(examples.filter(\.isGreedy).count) / Double(n)
        truncatedCount = examples.filter(\.truncated).count
        self.inputTokens = inputTokens
    }
}

/// Evaluates a model on LAMBADA exactly as lm-evaluation-harness 0.4.5's `lambada_openai` task
/// with the `hf` model does (same encoding, truncation and metrics), computing logits only where
/// the target is scored.
public struct LambadaEvaluator: Sendable {
    public let model: NeoXModel
    public let tokenizer: any TextTokenizer
    /// The harness's `max_length`: the config's `max_position_embeddings`.
    public var maxLength: Int
    /// Context used for an example with no words before the target (the harness's EOT prefix).
    public var endOfText: Int32
    public var scorer: BatchScorer

    public init(model: NeoXModel, tokenizer: any TextTokenizer, maxLength: Int? = nil, endOfText: Int32 = 0) {
        self.model = model
        self.tokenizer = tokenizer
        self.maxLength = maxLength ?? model.config.maxPositionEmbeddings
        self.endOfText = endOfText
        self.scorer = BatchScorer(model: model)
    }

    /// Encodes examples (in parallel: the tokenizer is thread-safe).
    public func requests(for examples: [LambadaExample]) throws -> [LambadaRequest] {
        try LambadaRequest.encode(examples, tokenizer: tokenizer, endOfText: endOfText)
    }

    /// Scores the first `limit` examples (all when nil).
    /// - Throws: `EvalError` when there is nothing to evaluate; tokenizer and engine errors.
    public func evaluate(examples: [LambadaExample], limit: Int? = nil) throws -> LambadaResult {
        let chosen = Array(examples.prefix(limit ?? examples.count))
        guard !chosen.isEmpty else { throw EvalError(.invalidInput, "no LAMBADA examples to evaluate") }
        return try evaluate(requests: requests(for: chosen))
    }

    public func evaluate(requests: [LambadaRequest]) throws -> LambadaResult {
        guard !requests.isEmpty else { throw EvalError(.invalidInput, "no LAMBADA examples to evaluate") }
        let jobs = try requests.enumerated().map { i, request in
            do { return try request.job(maxLength: maxLength) } catch let error as EvalError {
                throw EvalError(.invalidInput, "LAMBADA example \(i): \(error.description)")
            }
        }
        let scores = try scorer.score(jobs)
        let examples = requests.indices.map { i in
            LambadaExampleScore(index: i,
                                logLikelihood: scores[i].reduce(0) { $0 + $1.logProbability },
                                isGreedy: scores[i].allSatisfy(\.isGreedy),
                                contextTokens: requests[i].context.count,
                                targetTokens: requests[i].continuation.count,
                                truncated: requests[i].context.count + requests[i].continuation.count > maxLength + 1)
        }
        return LambadaResult(examples: examples, inputTokens: jobs.reduce(0) { $0 + $1.tokens.count })
    }
}

public enum EvalConcurrency {
    /// `items.map(transform)` spread over all cores, results in order (used for tokenization,
    /// which is thread-safe and otherwise a serial bottleneck in front of the batched model).
    public static func map<T: Sendable, R: Sendable>(_ items: [T], _ transform: @Sendable (T) throws -> R) throws -> [R] {
        let workers = min(items.count, ProcessInfo.processInfo.activeProcessorCount)
        if workers <= 1 { return try items.map(transform) }
        let results = UnsafeMutableBufferPointer<Result<R, any Error>?>.allocate(capacity: items.count)
        results.initialize(repeating: nil)
        defer { results.deinitialize(); results.deallocate() }
        let address = Int(bitPattern: results.baseAddress!)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let out = UnsafeMutablePointer<Result<R, any Error>?>(bitPattern: address)!
            var i = worker
            while i < items.count {
                out[i] = Result { try transform(items[i]) }
                i += workers
            }
        }
        return try results.map { try $0!.get() }
    }
}
