import Foundation

/// How the next token is chosen from a row of logits.
public enum Sampling: Sendable, Equatable {
    /// The argmax (the first index holding the largest logit, torch's tie rule): HF `do_sample=False`.
    case greedy
    /// A random draw from the filtered, renormalised distribution (see `SamplingParameters`).
    case random(SamplingParameters)
}

/// Sampling as HF's logits warpers apply them, in their order: temperature, then top-k, then top-p.
///
/// - temperature T: logits are divided by T (in float64).
/// - top-k (0 = off): tokens whose scaled logit is below the k-th largest are removed (ties at
///   the k-th value stay, as HF's `scores < topk(scores, k)[-1]`).
/// - top-p (1 = off): tokens sorted by probability, descending (ties: lower id first); a token
///   stays if the probability mass before it is below p, so the most likely token always stays.
/// - the survivors' probabilities are renormalised and one uniform number u ∈ [0, 1) picks the
///   first token (in that order) whose cumulative probability exceeds u.
///
/// Randomness is reproducible from `seed` alone: sequence b of a batch draws from its own
/// SplitMix64 generator seeded with `seed &+ (b + 1) &* 0x9E3779B97F4A7C15`, one 64-bit output
/// per generated token, u = (output >> 11) · 2⁻⁵³. So a prompt's continuation does not depend on
/// which other prompts share its batch, only on its index.
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Double
    public var topK: Int
    public var topP: Double
    public var seed: UInt64

    public init(temperature: Double = 1, topK: Int = 0, topP: Double = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    /// Values a draw cannot be made with.
    func validate() throws {
        guard temperature > 0, temperature.isFinite else {
            throw NeoXError(.invalidRequest, "sampling temperature must be positive and finite, got \(temperature)")
        }
        guard topK >= 0 else { throw NeoXError(.invalidRequest, "top-k must be 0 (off) or positive, got \(topK)") }
        guard topP > 0, topP <= 1 else { throw NeoXError(.invalidRequest, "top-p must lie in (0, 1], got \(topP)") }
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and fully specified by its seed, so sampled
/// generations are reproducible across machines and Swift versions (unlike `SystemRandomNumberGenerator`).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }

    /// A uniform double in [0, 1) from the top 53 bits of one output.
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// The generator of sequence `index` for `seed` (see `SamplingParameters`).
    public static func forSequence(_ index: Int, seed: UInt64) -> SplitMix64 {
        SplitMix64(seed: seed &+ UInt64(index + 1) &* 0x9E3779B97F4A7C15)
    }
}

enum TokenSampler {
    /// Draws a token from `logits` as `parameters` say, consuming one output of `generator`.
    static func sample(_ logits: [Float], _ parameters: SamplingParameters, generator: inout SplitMix64) -> Int {
        let u = generator.nextUnit()
        let scaled = logits.map { Double($0) / parameters.temperature }
        var order = Array(scaled.indices)
        order.sort { scaled[$0] > scaled[$1] || (scaled[$0] == scaled[$1] && $0 < $1) }
        if parameters.topK > 0 && parameters.topK < order.count {
            let threshold = scaled[order[parameters.topK - 1]]
            order = order.filter { scaled[$0] >= threshold }   // sorted, so this keeps a prefix
        }
        let top = scaled[order[0]]
        var probabilities = order.map { Foundation.exp(scaled[$0] - top) }
        let total = probabilities.reduce(0, +)
        for i in probabilities.indices { probabilities[i] /= total }
        var kept = probabilities.count
        if parameters.topP < 1 {
            var before = 0.0
            for i in probabilities.indices {
                if i > 0 && before >= parameters.topP { kept = i; break }
                before += probabilities[i]
            }
        }
        let mass = probabilities[0..<kept].reduce(0, +)
        var cumulative = 0.0
        for i in 0..<kept {
            cumulative += probabilities[i] / mass
            if u < cumulative { return order[i] }
        }
        return order[kept - 1]
    }
}
