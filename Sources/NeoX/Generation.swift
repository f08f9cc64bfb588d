import Foundation

/// Why a sequence stopped growing.
public enum StopReason: String, Sendable, Equatable {
    /// It produced one of the stop tokens (end of sequence); that token is the last generated.
    case endOfSequence = "eos"
    /// The caller's stop condition (a stop string, a stop token sequence) held after its last token.
    case stopCondition = "stop"
    /// It reached the requested number of new tokens.
    case maxTokens = "length"
    /// It filled the model's context (`max_position_embeddings`).
    case contextFull = "context"
}

/// What `NeoXModel.generate` is asked to do.
public struct GenerationOptions {
    /// New tokens per sequence, at most.
    public var maxNewTokens: Int
    public var sampling: Sampling
    /// Generation of a sequence stops after it produces one of these (HF: `eos_token_id`); empty
    /// never stops on a token (memorization needs exactly `maxNewTokens`).
    public var stopTokens: Set<Int32>
    /// Tokens never chosen: their logits count as −∞ when choosing (not in `logprobs`). HF's
    /// `min_length` does this to the EOS token, which Pythia's memorization evaluation relies on.
    public var suppressedTokens: Set<Int32>
    /// Checked after each new token with (sequence index, its generated tokens so far): true stops
    /// that sequence (the CLI's stop strings decode the tokens and look for the string).
    public var stopCondition: ((_ sequence: Int, _ generated: [Int32]) -> Bool)?
    /// Hooks to hand to `observer` for every position run (prompt and generated, the last
    /// generated token included: it is run once more, without logits, so that its activations exist).
    public var capture: [HookPoint]

    public init(maxNewTokens: Int, sampling: Sampling = .greedy, stopTokens: Set<Int32> = [],
                suppressedTokens: Set<Int32> = [], stopCondition: ((Int, [Int32]) -> Bool)? = nil,
                capture: [HookPoint] = []) {
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stopTokens = stopTokens
        self.suppressedTokens = suppressedTokens
        self.stopCondition = stopCondition
        self.capture = capture
    }
}

/// One prompt's continuation.
public struct GeneratedSequence: Sendable, Equatable {
    public var promptTokens: [Int32]
    /// The generated ids (a stop token, when one ended it, included, as HF includes it).
    public var tokens: [Int32]
    /// log softmax of the model's raw logits (temperature 1, no filtering) at each generated token,
    /// computed as `LogSoftmax.summarize` does: the natural-log probability the model gives it.
    public var logprobs: [Double]
    public var stopReason: StopReason
}

extension NeoXModel {
    /// Continues each prompt (any lengths, one batch, no padding) with a KV cache.
    ///
    /// Every step feeds each still-running sequence its last token at its own next position; a
    /// sequence that stops is no longer fed. Greedy decoding equals HF
    /// `generate(do_sample=False)` run on each prompt alone.
    ///
    /// - Parameter observer: receives `options.capture` hooks for the rows of each feed.
    public func generate(prompts: [[Int32]], options: GenerationOptions,
                         observer: DecoderObserver? = nil) throws -> [GeneratedSequence] {
        guard !prompts.isEmpty else { throw NeoXError(.invalidInput, "empty input: no prompts") }
        guard options.maxNewTokens >= 0 else {
            throw NeoXError(.invalidRequest, "the number of new tokens must not be negative, got \(options.maxNewTokens)")
        }
        if case .random(let parameters) = options.sampling { try parameters.validate() }
        let limit = config.maxPositionEmbeddings
        for (b, prompt) in prompts.enumerated() {
            guard !prompt.isEmpty else { throw NeoXError(.invalidInput, "empty input: prompt \(b) has no tokens") }
            guard prompt.count <= limit else {
                throw NeoXError(.invalidInput, "prompt \(b) is \(prompt.count) tokens, beyond the model's context limit max_position_embeddings = \(limit)")
            }
        }
        let longest = prompts.map(\.count).max()!
        let capacity = min(limit, longest + options.maxNewTokens)
        let decoder = try Decoder(model: self, batch: prompts.count, capacity: capacity)
        var sequences = prompts.map { GeneratedSequence(promptTokens: $0, tokens: [], logprobs: [], stopReason: .maxTokens) }
        var generators: [SplitMix64] = []
        if case .random(let parameters) = options.sampling {
            generators = prompts.indices.map { SplitMix64.forSequence($0, seed: parameters.seed) }
        }
        guard options.maxNewTokens > 0 else {
            if !options.capture.isEmpty { _ = try decoder.feed(prompts, logits: false, capture: options.capture, observer: observer) }
            return sequences
        }

        var running = Array(repeating: true, count: prompts.count)
        var logits = try decoder.feed(prompts, capture: options.capture, observer: observer)
        while true {
            var next = [[Int32]](repeating: [], count: prompts.count)
            for b in prompts.indices where running[b] {
                guard let row = logits[b] else { throw NeoXError(.invalidRequest, "internal: no logits for running sequence \(b)") }
                let summary = row.withUnsafeBufferPointer { LogSoftmax.summarize($0) }
                var choosable = row
                for id in options.suppressedTokens where Int(id) >= 0 && Int(id) < row.count { choosable[Int(id)] = -.infinity }
                let token: Int
                switch options.sampling {
                case .greedy:
                    token = options.suppressedTokens.isEmpty ? summary.argmax
                        : choosable.withUnsafeBufferPointer { LogSoftmax.summarize($0) }.argmax
                case .random(let parameters): token = TokenSampler.sample(choosable, parameters, generator: &generators[b])
                }
                let id = Int32(token)
                sequences[b].tokens.append(id)
                sequences[b].logprobs.append(summary.logProbability(of: row[token]))
                let length = prompts[b].count + sequences[b].tokens.count
                if options.stopTokens.contains(id) {
                    sequences[b].stopReason = .endOfSequence
                } else if let stop = options.stopCondition, stop(b, sequences[b].tokens) {
                    sequences[b].stopReason = .stopCondition
                } else if sequences[b].tokens.count >= options.maxNewTokens {
                    sequences[b].stopReason = .maxTokens
                } else if length >= capacity {
                    sequences[b].stopReason = .contextFull
                } else {
                    next[b] = [id]
                    continue
                }
                running[b] = false
                // Its last token is run once more (no logits) only for its activations.
                if !options.capture.isEmpty && length <= capacity { next[b] = [id] }
            }
            let stillRunning = running.contains(true)
            if !stillRunning && next.allSatisfy(\.isEmpty) { break }
            logits = try decoder.feed(next, logits: stillRunning, capture: options.capture, observer: observer)
            if !stillRunning { break }
        }
        return sequences
    }
}
