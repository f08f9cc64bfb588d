/// What the loss of `NeoXModel.backward` scores: for each input position, the token id it must
/// predict, or nothing. The loss is the mean next-token cross-entropy over the scored positions.
///
/// Two conventions build it from token rows, and both name a scored *target position* p as the
/// index of the predicted token in the row (p ≥ 1, predicted from the tokens before it):
/// - `labels(_:)`, Hugging Face's `labels = input_ids`: the input is the whole row of T tokens,
///   positions 0..T-2 predict tokens 1..T-1, the mean is over B·(T−1).
/// - `shifted(rows:)`, Pythia's training convention on Megatron rows: the input is the first
///   T−1 tokens of a T-token row (2048 of 2049), targets the row shifted by one, mean over B·(T−1).
public struct LossTargets: Sendable, Equatable {
    /// `ids[b][t]`: the token input position t of sequence b must predict, or -1 (not scored).
    public let ids: [[Int32]]

    public init(ids: [[Int32]]) { self.ids = ids }

    /// Scored positions in the whole batch.
    public var count: Int { ids.reduce(0) { $0 + $1.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } } }

    /// HF's convention on `tokens` (also the model input); `positions` keeps only those target
    /// positions (each in 1..<T) of every sequence.
    public static func labels(_ tokens: [[Int32]], positions: [Int]? = nil) throws -> LossTargets {
        let keep = try targetMask(length: tokens.first?.count ?? 0, positions: positions)
        return LossTargets(ids: tokens.map { row in
            (0..<row.count).map { t in t + 1 < row.count && keep[t + 1] ? row[t + 1] : -1 }
        })
    }

    /// Pythia's convention: inputs are each row without its last token, targets the row without its
    /// first; `positions` (each in 1..<rowLength) keeps only those target positions.
    public static func shifted(rows: [[Int32]], positions: [Int]? = nil) throws -> (inputs: [[Int32]], targets: LossTargets) {
        guard let length = rows.first?.count, length >= 2 else {
            throw NeoXError(.invalidInput, "a row needs at least 2 tokens to give an input and a target")
        }
        let keep = try targetMask(length: length, positions: positions)
        let inputs = rows.map { Array($0.dropLast()) }
        let targets = rows.map { row in (1..<row.count).map { p in keep[p] ? row[p] : -1 } }
        return (inputs, LossTargets(ids: targets))
    }

    /// keep[p] for p in 0..<length: whether target position p is scored (never p = 0).
    private static func targetMask(length: Int, positions: [Int]?) throws -> [Bool] {
        guard let positions else { return (0..<length).map { $0 > 0 } }
        var keep = [Bool](repeating: false, count: length)
        for p in positions {
            guard p >= 1 && p < length else {
                throw NeoXError(.invalidRequest, "target position \(p) is outside 1..<\(length) (position 0 has no preceding token to predict it from)")
            }
            keep[p] = true
        }
        return keep
    }
}
