import CBLAS

/// Linear CKA between two representations of the same tokens, streamed so memory does not grow
/// with the token count.
///
/// Linear CKA (Kornblith et al. 2019) of X [n×dX] and Y [n×dY], with Xc, Yc column-centred:
///
///     CKA = ‖Ycᵀ Xc‖²_F / (‖Xcᵀ Xc‖_F · ‖Ycᵀ Yc‖_F)
///
/// Only XᵀX, YᵀY, YᵀX and the column sums are needed, so rows are buffered into float64 chunks
/// and folded in with `dsyrk`/`dgemm`; the centred products come out at the end as
/// XcᵀXc = XᵀX − sₓsₓᵀ/n etc. To keep that subtraction from cancelling (residual-stream outlier
/// dimensions have means far larger than their spread), every row is first shifted by the mean of
/// the first chunk; centred quantities do not depend on the shift.
///
/// Optionally (`minibatchSize: k`), the debiased minibatch estimator of Nguyen, Raghu & Kornblith
/// (2021) as well: tokens are cut, in arrival order, into consecutive minibatches of exactly k
/// rows (a trailing partial minibatch is left out of this estimator only); each gives the unbiased
/// HSIC of Song et al. (2012) with linear kernels,
///
///     HSIC₁(K, L) = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1)/((k−1)(k−2)) − 2/(k−2)·1ᵀK̃L̃1] / (k(k−3)),
///
/// K = XXᵀ, L = YYᵀ, K̃/L̃ with zeroed diagonals, and
/// CKA_debiased = mean HSIC₁(K,L) / sqrt(mean HSIC₁(K,K) · mean HSIC₁(L,L)).
/// (HSIC₁ is invariant to shifting X or Y, so the same shifted rows serve both estimators.)
///
/// Usage in a sweep: keep the reference checkpoint's activations for a site (in memory, or on disk
/// as `SweepReferenceCache` does) and, for each other checkpoint, feed both in the same token order:
/// `add(x: referenceRows, y: checkpointRows, rows: r)` chunk by chunk, then `result()`.
public struct CKAAccumulator: Sendable {
    public let dimX: Int
    public let dimY: Int
    /// Rows per minibatch of the debiased estimator, or nil for plain linear CKA only.
    public let minibatchSize: Int?
    /// Rows buffered before a BLAS update (equals `minibatchSize` when that is set).
    public let chunkRows: Int
    /// How each chunk's d×d products are formed before they are added to the float64 sums.
    public let products: Products

    /// `float32Chunks` (default): each chunk's shifted rows are rounded to fp32 and multiplied by
    /// `ssyrk`/`sgemm` (twice the float64 rate, half the memory traffic), the chunk's products
    /// added into float64 sums; agreement with `float64` ≤ 1e-6 relative (`CKATests`).
    /// `float64`: every product in float64 (`dsyrk`/`dgemm`).
    public enum Products: Sendable { case float32Chunks, float64 }

    public private(set) var tokenCount: Int = 0
    private var xtx: [Double]
    private var yty: [Double]
    private var ytx: [Double]
    private var sumX: [Double]
    private var sumY: [Double]
    private var shiftX: [Double]? = nil
    private var shiftY: [Double]? = nil
    private var bufferX: [Double]
    private var bufferY: [Double]
    private var bufferedRows = 0
    private var hsicXYSum = 0.0
    private var hsicXXSum = 0.0
    private var hsicYYSum = 0.0
    private var minibatchCount = 0

    /// - Parameters:
    ///   - minibatchSize: also compute the debiased minibatch CKA with this many rows per
    ///     minibatch (at least 4; Nguyen et al. use a few hundred).
    ///   - chunkRows: rows per BLAS update for plain CKA (ignored when `minibatchSize` is set).
    public init(dimX: Int, dimY: Int, minibatchSize: Int? = nil, chunkRows: Int = 256, products: Products = .float32Chunks) {
        precondition(dimX > 0 && dimY > 0, "CKA needs positive dimensions")
        if let minibatchSize { precondition(minibatchSize >= 4, "the unbiased HSIC needs minibatches of at least 4 rows") }
        precondition(chunkRows > 0)
        self.dimX = dimX
        self.dimY = dimY
        self.minibatchSize = minibatchSize
        self.chunkRows = minibatchSize ?? chunkRows
        self.products = products
        xtx = [Double](repeating: 0, count: dimX * dimX)
        yty = [Double](repeating: 0, count: dimY * dimY)
        ytx = [Double](repeating: 0, count: dimY * dimX)
        sumX = [Double](repeating: 0, count: dimX)
        sumY = [Double](repeating: 0, count: dimY)
        bufferX = [Double](repeating: 0, count: self.chunkRows * dimX)
        bufferY = [Double](repeating: 0, count: self.chunkRows * dimY)
    }

    /// Adds `rows` tokens: `x` holds rows × dimX values, `y` rows × dimY, both row-major, row i of
    /// each describing the same token.
    public mutating func add(x: UnsafeBufferPointer<Float>, y: UnsafeBufferPointer<Float>, rows: Int) {
        precondition(x.count >= rows * dimX && y.count >= rows * dimY, "buffers smaller than rows × dim")
        var row = 0
        while row < rows {
            let take = min(rows - row, chunkRows - bufferedRows)
            for r in 0..<take {
                let source = row + r, target = bufferedRows + r
                for j in 0..<dimX { bufferX[target * dimX + j] = Double(x[source * dimX + j]) }
                for j in 0..<dimY { bufferY[target * dimY + j] = Double(y[source * dimY + j]) }
            }
            bufferedRows += take
            row += take
            if bufferedRows == chunkRows { flush() }
        }
        tokenCount += rows
    }

    public mutating func add(x: [Float], y: [Float], rows: Int) {
        x.withUnsafeBufferPointer { x in y.withUnsafeBufferPointer { y in add(x: x, y: y, rows: rows) } }
    }

    /// Folds the buffered rows into the running sums (and, when full, one minibatch HSIC).
    private mutating func flush() {
        let r = bufferedRows
        guard r > 0 else { return }
        if shiftX == nil {
            shiftX = Self.columnMeans(bufferX, rows: r, columns: dimX)
            shiftY = Self.columnMeans(bufferY, rows: r, columns: dimY)
        }
        Self.subtract(shiftX!, from: &bufferX, rows: r, columns: dimX)
        Self.subtract(shiftY!, from: &bufferY, rows: r, columns: dimY)
        for i in 0..<r {
            for j in 0..<dimX { sumX[j] += bufferX[i * dimX + j] }
            for j in 0..<dimY { sumY[j] += bufferY[i * dimY + j] }
        }
        let (dx, dy) = (Int32(dimX), Int32(dimY))
        switch products {
        case .float64:
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dx, Int32(r), 1, bufferX, dx, 1, &xtx, dx)
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dy, Int32(r), 1, bufferY, dy, 1, &yty, dy)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dy, dx, Int32(r), 1, bufferY, dy, bufferX, dx, 1, &ytx, dx)
        case .float32Chunks:
            let x32 = (0..<(r * dimX)).map { Float(bufferX[$0]) }, y32 = (0..<(r * dimY)).map { Float(bufferY[$0]) }
            var xx = [Float](repeating: 0, count: dimX * dimX), yy = [Float](repeating: 0, count: dimY * dimY)
            var yx = [Float](repeating: 0, count: dimY * dimX)
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, dx, Int32(r), 1, x32, dx, 0, &xx, dx)
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, dy, Int32(r), 1, y32, dy, 0, &yy, dy)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dy, dx, Int32(r), 1, y32, dy, x32, dx, 0, &yx, dx)
            for i in 0..<(dimX * dimX) { xtx[i] += Double(xx[i]) }
            for i in 0..<(dimY * dimY) { yty[i] += Double(yy[i]) }
            for i in 0..<(dimY * dimX) { ytx[i] += Double(yx[i]) }
        }
        if let k = minibatchSize, r == k {
            let gramX = Self.gram(bufferX, rows: k, columns: dimX)
            let gramY = Self.gram(bufferY, rows: k, columns: dimY)
            hsicXYSum += Self.unbiasedHSIC(gramX, gramY, n: k)
            hsicXXSum += Self.unbiasedHSIC(gramX, gramX, n: k)
            hsicYYSum += Self.unbiasedHSIC(gramY, gramY, n: k)
            minibatchCount += 1
        }
        bufferedRows = 0
    }

    /// The estimates for everything added so far. Does not consume the accumulator: more rows may
    /// follow (a partial buffer is folded into a copy).
    public func result() -> CKAResult {
        var copy = self
        copy.flush()
        return copy.finish()
    }

    private func finish() -> CKAResult {
        let n = Double(tokenCount)
        guard tokenCount > 1 else {
            return CKAResult(tokenCount: tokenCount, cka: .nan, hsicXY: .nan, hsicXX: .nan, hsicYY: .nan,
                             debiasedCKA: nil, debiasedTokenCount: 0, minibatchCount: 0)
        }
        var squaredXX = 0.0, squaredYY = 0.0, squaredYX = 0.0
        for i in 0..<dimX {
            for j in i..<dimX {
                let c = xtx[i * dimX + j] - sumX[i] * sumX[j] / n
                squaredXX += (i == j ? 1 : 2) * c * c
            }
        }
        for i in 0..<dimY {
            for j in i..<dimY {
                let c = yty[i * dimY + j] - sumY[i] * sumY[j] / n
                squaredYY += (i == j ? 1 : 2) * c * c
            }
        }
        for i in 0..<dimY {
            for j in 0..<dimX {
                let c = ytx[i * dimX + j] - sumY[i] * sumX[j] / n
                squaredYX += c * c
            }
        }
        // HSIC up to the common factor 1/(n−1)², which cancels in the ratio.
        let scale = 1 / ((n - 1) * (n - 1))
        let cka = squaredYX / (squaredXX.squareRoot() * squaredYY.squareRoot())
        var debiased: Double? = nil
        if minibatchCount > 0 {
            let m = Double(minibatchCount)
            debiased = (hsicXYSum / m) / ((hsicXXSum / m) * (hsicYYSum / m)).squareRoot()
        }
        return CKAResult(tokenCount: tokenCount, cka: cka, hsicXY: squaredYX * scale, hsicXX: squaredXX * scale,
                         hsicYY: squaredYY * scale, debiasedCKA: debiased,
                         debiasedTokenCount: minibatchCount * (minibatchSize ?? 0), minibatchCount: minibatchCount)
    }

    private static func columnMeans(_ buffer: [Double], rows: Int, columns: Int) -> [Double] {
        var means = [Double](repeating: 0, count: columns)
        for i in 0..<rows { for j in 0..<columns { means[j] += buffer[i * columns + j] } }
        return means.map { $0 / Double(rows) }
    }

    private static func subtract(_ shift: [Double], from buffer: inout [Double], rows: Int, columns: Int) {
        for i in 0..<rows { for j in 0..<columns { buffer[i * columns + j] -= shift[j] } }
    }

    /// The full k×k Gram matrix AAᵀ of the first `rows` rows.
    private static func gram(_ a: [Double], rows: Int, columns: Int) -> [Double] {
        var g = [Double](repeating: 0, count: rows * rows)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(rows), Int32(columns), 1, a, Int32(columns), 0, &g, Int32(rows))
        for i in 0..<rows { for j in 0..<i { g[i * rows + j] = g[j * rows + i] } }
        return g
    }

    /// Song et al. (2012) unbiased HSIC of two symmetric n×n kernel matrices (diagonals ignored).
    static func unbiasedHSIC(_ k: [Double], _ l: [Double], n: Int) -> Double {
        var trace = 0.0, sumK = 0.0, sumL = 0.0, rowDot = 0.0
        for i in 0..<n {
            var rowK = 0.0, rowL = 0.0
            for j in 0..<n where j != i {
                let a = k[i * n + j], b = l[i * n + j]
                trace += a * b
                rowK += a
                rowL += b
            }
            sumK += rowK
            sumL += rowL
            rowDot += rowK * rowL
        }
        let m = Double(n)
        return (trace + sumK * sumL / ((m - 1) * (m - 2)) - 2 / (m - 2) * rowDot) / (m * (m - 3))
    }
}

/// What `CKAAccumulator` measured.
public struct CKAResult: Sendable, Equatable {
    /// Tokens that entered the linear CKA.
    public var tokenCount: Int
    public var cka: Double
    /// Biased HSIC terms, ‖YcᵀXc‖²_F/(n−1)² etc. (kept for diagnostics).
    public var hsicXY: Double
    public var hsicXX: Double
    public var hsicYY: Double
    /// Debiased minibatch CKA, when requested and at least one full minibatch arrived.
    public var debiasedCKA: Double?
    /// Tokens that entered the debiased estimate (full minibatches only).
    public var debiasedTokenCount: Int
    public var minibatchCount: Int

}
