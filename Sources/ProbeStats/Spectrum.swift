import CBLAS
import Foundation

/// Singular-value statistics of a weight matrix (or of a per-head OV circuit).
///
/// - `effectiveRank`: Roy & Vetterli (2007): with p_i = σ_i / Σ_j σ_j, erank = exp(−Σ p_i ln p_i)
///   (terms with p_i = 0 contribute 0). Between 1 and the number of non-zero singular values.
/// - `per` (proportional effective rank) = erank / hidden size. The denominator is the model's
///   hidden size for every matrix (d×d, d×4d and the rank-≤dₕ OV circuits alike), so values
///   compare across matrices that write to the same residual stream.
/// - `spectralNorm` = σ_max.
public struct SpectralStatistics: Sendable, Equatable {
    /// Singular values, largest first.
    public var singularValues: [Double]
    public var effectiveRank: Double
    public var per: Double
    public var spectralNorm: Double

    public init(singularValues: [Double], hiddenSize: Int) {
        self.singularValues = singularValues
        effectiveRank = Spectrum.effectiveRank(singularValues)
        per = effectiveRank / Double(hiddenSize)
        spectralNorm = singularValues.first ?? 0
    }

}

/// LAPACK-backed singular values (float64 `dgesdd`).
public enum Spectrum {
    /// Roy & Vetterli effective rank; NaN for an all-zero spectrum.
    public static func effectiveRank(_ singularValues: [Double]) -> Double {
        let total = singularValues.reduce(0, +)
        guard total > 0 else { return .nan }
        var entropy = 0.0
        for sigma in singularValues where sigma > 0 {
            let p = sigma / total
            entropy -= p * log(p)
        }
        return exp(entropy)
    }

    /// Singular values (largest first) of a row-major rows×columns matrix.
    public static func singularValues(_ matrix: [Double], rows: Int, columns: Int) throws -> [Double] {
        precondition(matrix.count == rows * columns, "matrix size does not match its shape")
        // Row-major A is column-major Aᵀ; both have the same singular values.
        var a = matrix
        let (values, _, _) = try gesdd(&a, m: columns, n: rows, vectors: false)
        return values
    }

    public static func singularValues(_ matrix: [Float], rows: Int, columns: Int) throws -> [Double] {
        try singularValues(matrix.map(Double.init), rows: rows, columns: columns)
    }

    /// Singular values of the OV circuit W_O · W_V of one head without forming the d×d product.
    ///
    /// `wO` is d×dₕ (row-major), `wV` is dₕ×d. With the thin SVD W_O = U S Vᵀ (U: d×dₕ with
    /// orthonormal columns), W_O W_V = U (S Vᵀ W_V), so its singular values are those of the
    /// dₕ×d matrix S Vᵀ W_V: two small SVDs instead of one d×d SVD per head.
    public static func ovSingularValues(wO: [Double], wV: [Double], hidden d: Int, headDim dh: Int) throws -> [Double] {
        let (m, _) = try ovInnerFactor(wO: wO, wV: wV, hidden: d, headDim: dh)
        return try singularValues(m, rows: dh, columns: d)
    }

    /// The thin SVD W_O = U S Vᵀ reduced to what the OV product needs: M = S Vᵀ W_V (dₕ×d,
    /// row-major; W_O W_V = U M) and U as `gesdd` returns it (U[i, r] = u[r + i·dₕ]).
    static func ovInnerFactor(wO: [Double], wV: [Double], hidden d: Int, headDim dh: Int) throws -> (m: [Double], u: [Double]) {
        precondition(wO.count == d * dh && wV.count == dh * d, "W_O must be d×dh and W_V dh×d")
        // Row-major W_O (d×dh) is column-major W_Oᵀ (dh×d) = V S Uᵀ; gesdd returns its left
        // vectors, i.e. V (dh×dh, column-major), S, and Uᵀ.
        var a = wO
        let (s, left, u) = try gesdd(&a, m: dh, n: d, vectors: true)
        // M[r, c] = s[r] · Σ_i V[i, r] · W_V[i, c]; Vᵀ (row-major dh×dh) is `left` read column-major.
        var m = [Double](repeating: 0, count: dh * d)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(dh), Int32(d), Int32(dh), 1,
                    left, Int32(dh), wV, Int32(d), 0, &m, Int32(d))
        for r in 0..<dh { for c in 0..<d { m[r * d + c] *= s[r] } }
        return (m, u)
    }

    /// `dgesdd` on a column-major m×n matrix (destroyed). With `vectors`, also the min(m,n) left
    /// singular vectors (column-major m×min) and right ones (column-major min×n).
    ///
    /// OpenBLAS runs it on one thread: its threaded LAPACK sums in an order that depends on the
    /// thread count (the last bits of `effective_rank` and `spectral_norm` of a d×4d matrix changed
    /// between 1 and 2 threads), and a sweep's numbers must not depend on the machine's core count,
    /// or the shards of a sweep run on other nodes would not merge into the single sweep's bytes.
    static func gesdd(_ a: inout [Double], m: Int, n: Int, vectors: Bool) throws -> ([Double], [Double], [Double]) {
        let threads = openblas_get_num_threads()
        if threads != 1 { openblas_set_num_threads(1) }
        defer { if threads != 1 { openblas_set_num_threads(threads) } }
        return try gesddSingleThreaded(&a, m: m, n: n, vectors: vectors)
    }

    private static func gesddSingleThreaded(_ a: inout [Double], m: Int, n: Int, vectors: Bool) throws -> ([Double], [Double], [Double]) {
        let k = min(m, n)
        guard k > 0 else { return ([], [], []) }
        var jobz: CChar = vectors ? 83 : 78  // "S" (thin vectors) or "N" (values only)
        var mm = Int32(m), nn = Int32(n), lda = Int32(m)
        var s = [Double](repeating: 0, count: k)
        var u = [Double](repeating: 0, count: vectors ? m * k : 1)
        var vt = [Double](repeating: 0, count: vectors ? k * n : 1)
        var ldu = Int32(vectors ? m : 1), ldvt = Int32(vectors ? k : 1)
        var iwork = [Int32](repeating: 0, count: 8 * k)
        var info: Int32 = 0
        var lwork: Int32 = -1
        var query = 0.0
        dgesdd_(&jobz, &mm, &nn, &a, &lda, &s, &u, &ldu, &vt, &ldvt, &query, &lwork, &iwork, &info)
        guard info == 0 else { throw StatisticsError(.lapackFailure, "dgesdd workspace query failed (info \(info))") }
        lwork = Int32(query.rounded(.up)) + 1
        var work = [Double](repeating: 0, count: Int(lwork))
        dgesdd_(&jobz, &mm, &nn, &a, &lda, &s, &u, &ldu, &vt, &ldvt, &work, &lwork, &iwork, &info)
        guard info == 0 else { throw StatisticsError(.lapackFailure, "dgesdd failed to converge (info \(info)) on a \(m)×\(n) matrix") }
        return (s, u, vt)
    }
}
