import Foundation

/// Structure of an embedding matrix (rows = tokens): the correlation between token vectors and
/// the spread of their norms.
public enum EmbeddingStatistics {
    /// Pearson correlation between the first `count` rows of a row-major rows × d matrix, as
    /// `numpy.corrcoef(E[:count])` computes it: each row centred over its d components and divided
    /// by its norm, then all pairwise dot products, in float64. Row-major count × count; a constant
    /// row (zero variance) gives NaN in its row and column, as numpy does.
    public static func rowCorrelations(_ matrix: UnsafeBufferPointer<Float>, count: Int, dimension d: Int) -> [Double] {
        precondition(count >= 0 && d > 0 && matrix.count >= count * d, "matrix has fewer rows than asked for")
        var unit = [Double](repeating: 0, count: count * d)
        for r in 0..<count {
            var sum = 0.0
            for c in 0..<d { sum += Double(matrix[r * d + c]) }
            let mean = sum / Double(d)
            var squares = 0.0
            for c in 0..<d {
                let centred = Double(matrix[r * d + c]) - mean
                unit[r * d + c] = centred
                squares += centred * centred
            }
            let scale = squares > 0 ? 1 / squares.squareRoot() : .nan
            for c in 0..<d { unit[r * d + c] *= scale }
        }
        var result = [Double](repeating: 0, count: count * count)
        for i in 0..<count {
            for j in i..<count {
                var dot = 0.0
                for c in 0..<d { dot += unit[i * d + c] * unit[j * d + c] }
                // Rounding can push |r| a hair past 1; numpy clips the same way.
                let r = dot.isNaN ? dot : min(max(dot, -1), 1)
                result[i * count + j] = r
                result[j * count + i] = r
            }
        }
        return result
    }

    public static func rowCorrelations(_ matrix: [Float], count: Int, dimension d: Int) -> [Double] {
        matrix.withUnsafeBufferPointer { rowCorrelations($0, count: count, dimension: d) }
    }

    /// The L2 norm of every row of a row-major rows × d matrix, in float64.
    public static func rowNorms(_ matrix: [Float], dimension d: Int) -> [Double] {
        precondition(d > 0 && matrix.count % d == 0, "matrix size is not a multiple of its row length")
        return (0..<(matrix.count / d)).map { r in
            var squares = 0.0
            for c in 0..<d { let x = Double(matrix[r * d + c]); squares += x * x }
            return squares.squareRoot()
        }
    }

    /// Mean of the off-diagonal entries of a square correlation matrix (NaN entries skipped).
    public static func meanOffDiagonal(_ correlations: [Double], count: Int) -> Double {
        var sum = 0.0, n = 0
        for i in 0..<count { for j in 0..<count where i != j && !correlations[i * count + j].isNaN { sum += correlations[i * count + j]; n += 1 } }
        return n > 0 ? sum / Double(n) : .nan
    }
}

/// Summary of a list of numbers: mean, population std, min, max and the 10/50/90 % quantiles
/// (numpy's default linear interpolation).
public struct DistributionSummary: Sendable, Equatable {
    public var mean: Double
    public var std: Double
    public var minimum: Double
    public var maximum: Double
    public var p10: Double
    public var p50: Double
    public var p90: Double

    public init(values: [Double]) {
        precondition(!values.isEmpty, "no values to summarise")
        let sorted = values.sorted()
        let moments = CentralMoments(values: values)
        mean = moments.mean
        std = moments.variance.squareRoot()
        minimum = sorted.first!
        maximum = sorted.last!
        p10 = Quantiles.linear(sorted: sorted, 0.1)
        p50 = Quantiles.linear(sorted: sorted, 0.5)
        p90 = Quantiles.linear(sorted: sorted, 0.9)
    }
}

public enum Quantiles {
    /// The p-quantile of sorted values with linear interpolation between order statistics
    /// (Hyndman & Fan type 7, numpy's default): position h = (n − 1)·p.
    public static func linear(sorted: [Double], _ p: Double) -> Double {
        precondition(!sorted.isEmpty && p >= 0 && p <= 1, "quantile of an empty list or p outside [0, 1]")
        let h = Double(sorted.count - 1) * p
        let lower = Int(h.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let fraction = h - Double(lower)
        // numpy's lerp: a + (b − a)·t, written as it does so the two agree to the last bit.
        let a = sorted[lower], b = sorted[upper]
        return fraction >= 0.5 ? b - (b - a) * (1 - fraction) : a + (b - a) * fraction
    }
}
