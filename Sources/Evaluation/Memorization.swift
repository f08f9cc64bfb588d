import Foundation
import NeoX

/// One training row's memorization score.
public struct MemorizationScore: Sendable, Equatable {
    /// The row's index in the dataset.
    public var row: Int
    /// Fraction of the continuation's tokens the greedy generation reproduces, position by position.
    public var score: Double
}

/// Memorization scores over a set of rows, with the probe's aggregates.
public struct MemorizationResult: Sendable {
    public var scores: [MemorizationScore]
    /// Mean score over rows.
    public var meanScore: Double { scores.isEmpty ? .nan : scores.map(\.score).reduce(0, +) / Double(scores.count) }
    /// Fraction of rows with score 1 (the whole continuation reproduced).
    public var memorizedFraction: Double {
        scores.isEmpty ? .nan : Double(scores.filter { $0.score == 1 }.count) / Double(scores.count)
    }
}

/// Memorization of training data as Biderman et al. (2023, "Emergent and Predictable Memorization
/// in Large Language Models") measure it with EleutherAI's `eval_memorization.py`: for each row of
/// the pre-tokenized training data, the model greedily continues the first `prefixLength` tokens
/// for exactly `continuationLength` tokens (`generate(..., max_length = min_length = P + C)`,
/// so the EOS token is never chosen: HF's `min_length` sets its logit to −∞), and the score is
/// the fraction of generated tokens equal to the row's next `continuationLength` tokens.
public struct MemorizationEvaluator: Sendable {
    public let model: NeoXModel
    public let prefixLength: Int
    public let continuationLength: Int
    /// Rows generated together (equal-length prompts; bounds the KV cache).
    public let rowsPerBatch: Int

    public init(model: NeoXModel, prefixLength: Int = 32, continuationLength: Int = 32, rowsPerBatch: Int = 64) {
        self.model = model
        self.prefixLength = prefixLength
        self.continuationLength = continuationLength
        self.rowsPerBatch = rowsPerBatch
    }

    /// Scores `rows` (index, tokens), each holding at least prefix + continuation tokens.
    public func evaluate(rows: [(index: Int, tokens: [Int32])]) throws -> MemorizationResult {
        let P = prefixLength, C = continuationLength
        guard P >= 1, C >= 1 else {
            throw EvalError(.invalidSetting, "prefix and continuation lengths must be at least 1, got \(P) and \(C)")
        }
        guard P + C <= model.config.maxPositionEmbeddings else {
            throw EvalError(.invalidSetting, "prefix + continuation = \(P + C) tokens exceeds the model's context of \(model.config.maxPositionEmbeddings)")
        }
        for row in rows where row.tokens.count < P + C {
            throw EvalError(.invalidInput, "row \(row.index) has \(row.tokens.count) tokens, fewer than prefix + continuation = \(P + C)")
        }
        let suppressed: Set<Int32> = Set([model.config.eosTokenID].compactMap { $0 })
        let options = GenerationOptions(maxNewTokens: C, suppressedTokens: suppressed)
        var scores: [MemorizationScore] = []
        var start = 0
        while start < rows.count {
            let batch = rows[start..<min(rows.count, start + max(1, rowsPerBatch))]
            let generated = try model.generate(prompts: batch.map { Array($0.tokens.prefix(P)) }, options: options)
            for (row, sequence) in zip(batch, generated) {
                let truth = row.tokens[P..<(P + C)]
                let matches = zip(sequence.tokens, truth).filter { $0 == $1 }.count
                scores.append(MemorizationScore(row: row.index, score: Double(matches) / Double(C)))
            }
            start += batch.count
        }
        return MemorizationResult(scores: scores)
    }
}
