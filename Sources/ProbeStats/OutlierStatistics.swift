/// Outlier statistics of one activation site: N tokens × d values, streamed in chunks of rows.
///
/// Everything is accumulated in float64 and is independent of how the tokens are chunked (up to
/// rounding), so the sweep can feed whatever batches the forward pass produces.
///
/// Definitions (x_{t,j}: token t, dimension j; ties resolve to the lowest token, then dimension,
/// i.e. the first occurrence in row-major order, matching `numpy.argmax`):
/// - `maxAbs` = max |x_{t,j}|, at `argmaxToken` (global index: `tokenOffset` + row) and `argmaxDim`.
/// - `meanNorm` = (1/N) Σ_t sqrt(Σ_j x_{t,j}²): the mean per-token L2 norm.
/// - `kurtosis`: Pearson kurtosis (non-excess; Gaussian = 3) of all N·d elements pooled,
///   n·Σ(x−μ)⁴ / (Σ(x−μ)²)² with μ the mean of all elements. Large when a few elements dominate.
/// - `maxDimKurtosis`: for each dimension j, the Pearson kurtosis of the N values x_{·,j}; the
///   largest of those and the dimension it belongs to (`maxDimKurtosisDim`). Dimensions whose
///   values are all equal have no kurtosis and are skipped. This is the "outlier feature" view:
///   a dimension that is huge on a few tokens only.
/// - `topDimensions(k)`: the k dimensions with the largest max_t |x_{t,j}|, largest first.
/// - `nonFiniteCount`: NaN/±inf elements seen; they propagate into the moments (so kurtosis turns
///   NaN rather than silently hiding a diverged checkpoint) but are never reported as the max.
public struct OutlierStatistics: Sendable {
    public let dimension: Int
    public private(set) var tokenCount: Int = 0
    public private(set) var maxAbs: Double = 0
    public private(set) var argmaxToken: Int = -1
    public private(set) var argmaxDim: Int = -1
    public private(set) var nonFiniteCount: Int = 0
    private var normSum: Double = 0
    private var pooled = CentralMoments()
    /// Per-dimension running moments (structure of arrays so the inner loops vectorise).
    private var dimensionCount: Double = 0
    private var dimensionMean: [Double]
    private var dimensionM2: [Double]
    private var dimensionM3: [Double]
    private var dimensionM4: [Double]
    /// Per-dimension max |x|.
    public private(set) var dimensionMaxAbs: [Double]

    public init(dimension: Int) {
        precondition(dimension > 0, "OutlierStatistics needs a positive dimension")
        self.dimension = dimension
        dimensionMean = [Double](repeating: 0, count: dimension)
        dimensionM2 = dimensionMean
        dimensionM3 = dimensionMean
        dimensionM4 = dimensionMean
        dimensionMaxAbs = dimensionMean
    }

    /// Adds `rowCount` tokens (row-major, `rowCount × dimension` values). `tokenOffset` is the
    /// global index of the first row, used only to report where the maximum sits.
    public mutating func add(rows: UnsafeBufferPointer<Float>, rowCount: Int, tokenOffset: Int) {
        precondition(rows.count >= rowCount * dimension, "buffer holds fewer than rowCount × dimension values")
        guard rowCount > 0 else { return }
        let d = dimension
        let base = rows.baseAddress!
        // Pass 1: maxima, norms, chunk sums (pooled and per dimension).
        var chunkSum = 0.0
        var columnSum = [Double](repeating: 0, count: d)
        columnSum.withUnsafeMutableBufferPointer { columnSum in
            dimensionMaxAbs.withUnsafeMutableBufferPointer { columnMax in
                for row in 0..<rowCount {
                    let values = base + row * d
                    var squares = 0.0
                    var rowSum = 0.0
                    for j in 0..<d {
                        let x = Double(values[j])
                        squares += x * x
                        rowSum += x
                        columnSum[j] += x
                        let magnitude = abs(x)
                        if magnitude.isFinite {
                            if magnitude > columnMax[j] { columnMax[j] = magnitude }
                            if magnitude > maxAbs {
                                maxAbs = magnitude
                                argmaxToken = tokenOffset + row
                                argmaxDim = j
                            }
                        } else {
                            nonFiniteCount += 1
                        }
                    }
                    chunkSum += rowSum
                    normSum += squares.squareRoot()
                }
            }
        }
        // Pass 2: central sums around the chunk's own means, then merge.
        let n = Double(rowCount)
        let pooledCenter = chunkSum / (n * Double(d))
        var p2 = 0.0, p3 = 0.0, p4 = 0.0
        var c2 = [Double](repeating: 0, count: d), c3 = c2, c4 = c2
        let columnMean = columnSum.map { $0 / n }
        columnMean.withUnsafeBufferPointer { mu in
            c2.withUnsafeMutableBufferPointer { c2 in
                c3.withUnsafeMutableBufferPointer { c3 in
                    c4.withUnsafeMutableBufferPointer { c4 in
                        for row in 0..<rowCount {
                            let values = base + row * d
                            for j in 0..<d {
                                let x = Double(values[j])
                                let e = x - pooledCenter
                                let e2 = e * e
                                p2 += e2
                                p3 += e2 * e
                                p4 += e2 * e2
                                let c = x - mu[j]
                                let cc = c * c
                                c2[j] += cc
                                c3[j] += cc * c
                                c4[j] += cc * cc
                            }
                        }
                    }
                }
            }
        }
        pooled.merge(CentralMoments(count: n * Double(d), mean: pooledCenter, m2: p2, m3: p3, m4: p4))
        for j in 0..<d {
            var column = CentralMoments(count: dimensionCount, mean: dimensionMean[j],
                                        m2: dimensionM2[j], m3: dimensionM3[j], m4: dimensionM4[j])
            column.merge(CentralMoments(count: n, mean: columnMean[j], m2: c2[j], m3: c3[j], m4: c4[j]))
            dimensionMean[j] = column.mean
            dimensionM2[j] = column.m2
            dimensionM3[j] = column.m3
            dimensionM4[j] = column.m4
        }
        dimensionCount += n
        tokenCount += rowCount
    }

    /// Convenience for arrays.
    public mutating func add(rows: [Float], rowCount: Int, tokenOffset: Int) {
        rows.withUnsafeBufferPointer { add(rows: $0, rowCount: rowCount, tokenOffset: tokenOffset) }
    }

    public var meanNorm: Double { tokenCount > 0 ? normSum / Double(tokenCount) : .nan }

    /// Pearson kurtosis of all elements (see the type's documentation); nil if all are equal.
    public var kurtosis: Double? { pooled.kurtosis }

    /// Pearson kurtosis of each dimension over tokens; nil for constant dimensions.
    public var dimensionKurtosis: [Double?] {
        (0..<dimension).map { j in
            CentralMoments(count: dimensionCount, mean: dimensionMean[j], m2: dimensionM2[j],
                           m3: dimensionM3[j], m4: dimensionM4[j]).kurtosis
        }
    }

    /// The largest per-dimension kurtosis and its dimension (lowest index on ties).
    public var maxDimensionKurtosis: (dim: Int, value: Double)? {
        var best: (dim: Int, value: Double)? = nil
        for (j, value) in dimensionKurtosis.enumerated() {
            guard let value, value.isFinite else { continue }
            if best == nil || value > best!.value { best = (j, value) }
        }
        return best
    }

    /// The `k` dimensions with the largest max |x| over tokens, largest first (ties: lower index).
    public func topDimensions(_ k: Int) -> [(dim: Int, maxAbs: Double)] {
        let order = (0..<dimension).sorted { a, b in
            dimensionMaxAbs[a] != dimensionMaxAbs[b] ? dimensionMaxAbs[a] > dimensionMaxAbs[b] : a < b
        }
        return order.prefix(max(0, k)).map { ($0, dimensionMaxAbs[$0]) }
    }

}
