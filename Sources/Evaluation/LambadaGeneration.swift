import Foundation
import NeoX

/// LAMBADA as a generation task, after Nicolini et al. ("The Garden of Forking Paths"): what the
/// model writes when it continues the passage itself, and how that changes as more of the passage
/// is revealed (causal unmasking).
///
/// For each example (context c and target t tokenized as lm-evaluation-harness does, see
/// `LambadaRequest`; sentence s = c + t, n = |s|), all decoding greedy, never stopping early
/// (exactly the stated number of tokens; EOS may be chosen like any token):
/// - generation: g = the |t| tokens after c; `exact` when g = t; the log-probability the model
///   gives each token of g.
/// - causal unmasking, k = 1…K: the prefix s[0..<m], m = max(1, ⌊k·n/(K+1)⌋), is continued by
///   n − m tokens g_k; matches = #{i : g_k[i] = s[m+i]}; the log-probabilities of g_k.
/// Aggregates over examples: `generationAcc` = fraction exact; `generationPerplexity` =
/// exp(−Σ log p / Σ tokens) over every generated token of every example; per k,
/// `agreement` = Σ matches / Σ (n − m) and `perplexity` = exp(−Σ log p / Σ (n − m)).
/// Inputs longer than the context are left-truncated (generation: the context keeps its last
/// `max_position_embeddings − |t|` tokens; unmasking: the sentence its last `max_position_embeddings`).
public struct LambadaGenerationEvaluator: Sendable {
    public struct Unmasking: Sendable, Equatable {
        public var k: Int
        public var agreement: Double
        public var perplexity: Double
        public var tokens: Int
    }

    public struct Result: Sendable {
        public var exampleCount: Int
        public var generationAcc: Double
        public var generationPerplexity: Double
        public var generatedTokens: Int
        public var unmasking: [Unmasking]
    }

    public let model: NeoXModel
    /// K: prefixes of k/(K+1) of each sentence, k = 1…K.
    public let unmaskSteps: Int
    /// Prompts decoded together.
    public let promptsPerBatch: Int

    public init(model: NeoXModel, unmaskSteps: Int = 6, promptsPerBatch: Int = 32) {
        self.model = model
        self.unmaskSteps = unmaskSteps
        self.promptsPerBatch = promptsPerBatch
    }

    public func evaluate(requests: [LambadaRequest]) throws -> Result {
        guard unmaskSteps >= 1 else { throw EvalError(.invalidSetting, "the number of unmasking steps must be at least 1, got \(unmaskSteps)") }
        guard !requests.isEmpty else { throw EvalError(.invalidInput, "no LAMBADA examples to generate from") }
        let limit = model.config.maxPositionEmbeddings
        var jobs: [(prompt: [Int32], truth: [Int32], k: Int)] = []
        for request in requests {
            guard !request.continuation.isEmpty, request.continuation.count < limit else {
                throw EvalError(.invalidInput, "a LAMBADA target of \(request.continuation.count) tokens cannot be generated within the context of \(limit)")
            }
            jobs.append((Array(request.context.suffix(limit - request.continuation.count)), request.continuation, 0))
            let sentence = Array((request.context + request.continuation).suffix(limit))
            let n = sentence.count
            for k in 1...unmaskSteps {
                let m = max(1, (k * n) / (unmaskSteps + 1))
                if m < n { jobs.append((Array(sentence[..<m]), Array(sentence[m...]), k)) }
            }
        }
        // Per k (0 = generation): matches, exact count, Σ log p, tokens.
        var matches = [Int](repeating: 0, count: unmaskSteps + 1), exact = 0
        var logProbability = [Double](repeating: 0, count: unmaskSteps + 1), tokens = [Int](repeating: 0, count: unmaskSteps + 1)
        var start = 0
        while start < jobs.count {
            let batch = Array(jobs[start..<min(jobs.count, start + max(1, promptsPerBatch))])
            let lengths = batch.map(\.truth.count)
            let options = GenerationOptions(maxNewTokens: lengths.max()!, stopCondition: { b, generated in generated.count >= lengths[b] })
            let generated = try model.generate(prompts: batch.map(\.prompt), options: options)
            for (job, sequence) in zip(batch, generated) {
                let same = zip(sequence.tokens, job.truth).filter { $0 == $1 }.count
                matches[job.k] += same
                if job.k == 0 && same == job.truth.count && sequence.tokens.count == job.truth.count { exact += 1 }
                logProbability[job.k] += sequence.logprobs.reduce(0, +)
                tokens[job.k] += sequence.tokens.count
            }
            start += batch.count
        }
        let unmasking = (1...unmaskSteps).map { k in
            Unmasking(k: k, agreement: Double(matches[k]) / Double(max(tokens[k], 1)),
                      perplexity: exp(-logProbability[k] / Double(max(tokens[k], 1))), tokens: tokens[k])
        }
        return Result(exampleCount: requests.count, generationAcc: Double(exact) / Double(requests.count),
                      generationPerplexity: exp(-logProbability[0] / Double(tokens[0])), generatedTokens: tokens[0],
                      unmasking: unmasking)
    }
}
