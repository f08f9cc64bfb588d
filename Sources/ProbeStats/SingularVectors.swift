import CBLAS
import Foundation

/// Singular vectors of weight matrices in the residual stream's (output) space, for reading
/// directions through the unembedding (Millidge & Black 2022).
///
/// Matrices are in Hugging Face's `nn.Linear` orientation (out × in): the output-space vectors of
/// `mlp.dense_4h_to_h.weight` (d × ff) are its *left* singular vectors, which are the right
/// singular vectors of TransformerLens's `W_out` (ff × d, x·W). Each vector's sign is fixed so its
/// largest-magnitude component (the first, on ties) is positive: SVD leaves signs arbitrary.
public struct SingularDirections: Sendable, Equatable {
    /// Singular values, largest first.
    public var values: [Double]
    /// vectors[k] is the unit output-space vector of values[k].
    public var vectors: [[Double]]
}

extension Spectrum {
    /// The SVD of a row-major rows × columns matrix, keeping the `count` leading left singular
    /// vectors (length `rows`) and every singular value.
    public static func leftSingularDirections(_ matrix: [Double], rows: Int, columns: Int, count: Int) throws -> SingularDirections {
        precondition(matrix.count == rows * columns, "matrix size does not match its shape")
        // Row-major A is column-major Aᵀ = U' S V'ᵀ; A's left vectors are the rows of V'ᵀ
        // (k × rows, column-major: component i of vector r at vt[r + i·k]).
        var a = matrix
        let (s, _, vt) = try gesdd(&a, m: columns, n: rows, vectors: true)
        let k = s.count
        let vectors = (0..<min(count, k)).map { r in signFixed((0..<rows).map { vt[r + $0 * k] }) }
        return SingularDirections(values: s, vectors: vectors)
    }

    /// The SVD of W_O·W_V (d × d, rank ≤ dₕ) from W_O (d × dₕ) and W_V (dₕ × d) without the d × d
    /// product: W_O = U S Vᵀ, M = S Vᵀ W_V = U₂ S₂ V₂ᵀ, so W_O W_V = (U U₂) S₂ V₂ᵀ.
    public static func productLeftSingularDirections(wO: [Double], wV: [Double], hidden d: Int, headDim dh: Int,
                                                     count: Int) throws -> SingularDirections {
        let (m, vt) = try ovInnerFactor(wO: wO, wV: wV, hidden: d, headDim: dh)
        let inner = try leftSingularDirections(m, rows: dh, columns: d, count: count)
        let vectors = inner.vectors.map { u2 in
            signFixed((0..<d).map { i in (0..<dh).reduce(0.0) { $0 + vt[$1 + i * dh] * u2[$1] } })
        }
        return SingularDirections(values: inner.values, vectors: vectors)
    }

    /// Singular values of the QK circuit W_Qᵀ·W_K (d × d; the bilinear form of the attention
    /// scores before rotary and the 1/√dₕ scale; TransformerLens's W_Q W_Kᵀ) from W_Q, W_K (dₕ × d).
    public static func qkSingularValues(wQ: [Double], wK: [Double], hidden d: Int, headDim dh: Int) throws -> [Double] {
        precondition(wQ.count == dh * d && wK.count == dh * d, "W_Q and W_K must be dh×d")
        var transposed = [Double](repeating: 0, count: d * dh)
        for r in 0..<dh { for c in 0..<d { transposed[c * dh + r] = wQ[r * d + c] } }
        return try ovSingularValues(wO: transposed, wV: wK, hidden: d, headDim: dh)
    }

    static func signFixed(_ vector: [Double]) -> [Double] {
        var best = 0
        for i in vector.indices where abs(vector[i]) > abs(vector[best]) { best = i }
        return vector.isEmpty || vector[best] >= 0 ? vector : vector.map { -$0 }
    }
}

/// The tokens a residual-stream direction u writes most and least: the top n of W_U·u (the
/// unembedding, V × d, without the final LayerNorm), largest first, and the top n of −W_U·u;
/// ties go to the smaller token id. Scores in float64.
public enum DirectionTokens {
    public struct Ends: Sendable, Equatable {
        public var top: [Int]
        public var bottom: [Int]

        public init(top: [Int], bottom: [Int]) {
            self.top = top
            self.bottom = bottom
        }
    }

    /// For each direction (length d), its ends. The unembedding is read in blocks of rows
    /// widened to float64 (`blockRows` × d doubles at a time).
    public static func ends(unembedding: [Float], vocabulary: Int, dimension d: Int, directions: [[Double]], count n: Int,
                            blockRows: Int = 4096) -> [Ends] {
        precondition(unembedding.count == vocabulary * d && directions.allSatisfy { $0.count == d }, "shapes do not match")
        let k = directions.count
        guard k > 0 else { return [] }
        var basis = [Double](repeating: 0, count: d * k)  // d × k row-major
        for (j, u) in directions.enumerated() { for i in 0..<d { basis[i * k + j] = u[i] } }
        var top = [TopList](repeating: TopList(capacity: n), count: k)
        var bottom = top
        var block = [Double](repeating: 0, count: blockRows * d)
        var scores = [Double](repeating: 0, count: blockRows * k)
        var start = 0
        while start < vocabulary {
            let rows = min(blockRows, vocabulary - start)
            for i in 0..<(rows * d) { block[i] = Double(unembedding[start * d + i]) }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(k), Int32(d), 1,
                        block, Int32(d), basis, Int32(k), 0, &scores, Int32(k))
            for r in 0..<rows {
                for j in 0..<k {
                    top[j].offer(score: scores[r * k + j], id: start + r)
                    bottom[j].offer(score: -scores[r * k + j], id: start + r)
                }
            }
            start += rows
        }
        return (0..<k).map { Ends(top: top[$0].ids, bottom: bottom[$0].ids) }
    }

    /// Agreement of two directions' ends, blind to the arbitrary sign of a singular vector: the
    /// larger of (|top∩top'| + |bottom∩bottom'|) and (|top∩bottom'| + |bottom∩top'|), over 2n.
    public static func overlap(_ a: Ends, _ b: Ends) -> Double {
        let n = a.top.count + a.bottom.count
        guard n > 0 else { return .nan }
        func common(_ x: [Int], _ y: [Int]) -> Int { Set(x).intersection(y).count }
        let same = common(a.top, b.top) + common(a.bottom, b.bottom)
        let flipped = common(a.top, b.bottom) + common(a.bottom, b.top)
        return Double(max(same, flipped)) / Double(n)
    }

    /// The n best (score, id) pairs seen, best first (higher score, then smaller id).
    struct TopList {
        let capacity: Int
        var entries: [(score: Double, id: Int)] = []

        init(capacity: Int) { self.capacity = capacity }

        mutating func offer(score: Double, id: Int) {
            guard capacity > 0 else { return }
            if entries.count == capacity, let last = entries.last, !(score > last.score) { return }
            var index = entries.count
            while index > 0 && (score > entries[index - 1].score) { index -= 1 }
            entries.insert((score, id), at: index)
            if entries.count > capacity { entries.removeLast() }
        }

        var ids: [Int] { entries.map(\.id) }
    }
}
