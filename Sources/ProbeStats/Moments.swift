/// Count, mean and central moment sums (M2, M3, M4) of a stream of numbers, in float64.
///
/// Raw power sums (Σx⁴ …) lose everything to cancellation when the mean is large next to the
/// spread, which is exactly the case for residual-stream outlier dimensions. So each chunk is
/// summarised around its own mean (two passes over data already in cache) and chunks are merged
/// with the pairwise update of Chan et al. (1979) extended to the 3rd and 4th moments
/// (Pébay 2008, eqs. 2.1–2.4).
public struct CentralMoments: Sendable, Equatable {
    public private(set) var count: Double = 0
    public private(set) var mean: Double = 0
    /// Σ (x − mean)², Σ (x − mean)³, Σ (x − mean)⁴ over everything added.
    public private(set) var m2: Double = 0
    public private(set) var m3: Double = 0
    public private(set) var m4: Double = 0

    public init() {}

    public init(count: Double, mean: Double, m2: Double, m3: Double, m4: Double) {
        self.count = count
        self.mean = mean
        self.m2 = m2
        self.m3 = m3
        self.m4 = m4
    }

    /// Summarises a buffer with two passes (mean, then central sums).
    public init<C: Collection>(values: C) where C.Element == Double {
        guard !values.isEmpty else { self.init(); return }
        let n = Double(values.count)
        var sum = 0.0
        for value in values { sum += value }
        let center = sum / n
        var s2 = 0.0, s3 = 0.0, s4 = 0.0
        for value in values {
            let d = value - center
            let d2 = d * d
            s2 += d2
            s3 += d2 * d
            s4 += d2 * d2
        }
        self.init(count: n, mean: center, m2: s2, m3: s3, m4: s4)
    }

    /// Combines with the summary of a disjoint set of values (order does not matter).
    public mutating func merge(_ other: CentralMoments) {
        guard other.count > 0 else { return }
        guard count > 0 else { self = other; return }
        let na = count, nb = other.count, n = na + nb
        let delta = other.mean - mean
        let delta2 = delta * delta
        let newM2 = m2 + other.m2 + delta2 * na * nb / n
        let newM3 = m3 + other.m3 + delta2 * delta * na * nb * (na - nb) / (n * n)
            + 3 * delta * (na * other.m2 - nb * m2) / n
        let newM4 = m4 + other.m4 + delta2 * delta2 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6 * delta2 * (na * na * other.m2 + nb * nb * m2) / (n * n)
            + 4 * delta * (na * other.m3 - nb * m3) / n
        mean += delta * nb / n
        m2 = newM2
        m3 = newM3
        m4 = newM4
        count = n
    }

    /// Population variance, Σ(x − mean)² / n (numpy's default, ddof = 0).
    public var variance: Double { count > 0 ? m2 / count : .nan }

    /// Pearson kurtosis (not excess: a normal distribution gives 3):
    /// `(Σ(x − mean)⁴ / n) / (Σ(x − mean)² / n)²`, i.e. `n · M4 / M2²`.
    /// `nil` when the values are all equal (the ratio is 0/0), so callers omit the row.
    public var kurtosis: Double? {
        guard count > 0, m2 > 0 else { return nil }
        return count * m4 / (m2 * m2)
    }
}
