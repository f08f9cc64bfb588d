/// Fixed histogram bins for one tensor, shared by every checkpoint of a sweep so that bin i means
/// the same interval at every step.
///
/// Bins are `binCount` equal-width intervals over [−range, range]: value w falls in bin
/// ⌊(w + R) / (2R) · binCount⌋, with w = R itself put in the last bin. Values below −R count as
/// underflow and above R as overflow (so growth beyond the reference's range stays visible); NaN
/// counts as overflow. `WeightProbe` takes R per tensor name from the reference checkpoint:
/// R = max |w_ref| (or 1 when that tensor is all zeros, as biases are at step 0).
public struct HistogramBinning: Sendable, Equatable {
    public var range: Double
    public var binCount: Int

    public init(range: Double, binCount: Int) {
        precondition(range > 0 && range.isFinite, "histogram range must be positive and finite")
        precondition(binCount > 0, "histogram needs at least one bin")
        self.range = range
        self.binCount = binCount
    }

    /// R = max |reference| (1 if the reference is all zeros or not finite).
    public init(reference: UnsafeBufferPointer<Float>, binCount: Int) {
        var maximum = 0.0
        for value in reference { let m = abs(Double(value)); if m > maximum, m.isFinite { maximum = m } }
        self.init(range: maximum > 0 ? maximum : 1, binCount: binCount)
    }

    public init(reference: [Float], binCount: Int) {
        self = reference.withUnsafeBufferPointer { HistogramBinning(reference: $0, binCount: binCount) }
    }

    /// Bin index, −1 for underflow, `binCount` for overflow.
    @inline(__always)
    public func bin(_ value: Double) -> Int {
        if value < -range { return -1 }
        if !(value <= range) { return binCount }  // > range, or NaN
        let index = Int(((value + range) / (2 * range) * Double(binCount)).rounded(.down))
        return min(max(index, 0), binCount - 1)
    }
}

/// Bin counts under a `HistogramBinning`.
public struct Histogram: Sendable, Equatable {
    public var binning: HistogramBinning
    public var counts: [Int]
    public var underflow: Int
    public var overflow: Int
}

/// Summary statistics of one weight tensor, computed in float64.
///
/// - `frobeniusNorm` = sqrt(Σ w²); `mean`; `std` = population standard deviation (ddof = 0);
///   `maxAbs` = max |w|; `kurtosis` = Pearson (non-excess) kurtosis of all elements, as in
///   `CentralMoments.kurtosis` (nil for constant tensors such as LayerNorm weights at step 0).
/// - `distanceFromReference` = ‖W − W_ref‖_F when a reference tensor of the same shape is given.
/// - `histogram` when a binning is given.
public struct WeightStatistics: Sendable, Equatable {
    public var count: Int
    public var frobeniusNorm: Double
    public var mean: Double
    public var std: Double
    public var maxAbs: Double
    public var kurtosis: Double?
    public var distanceFromReference: Double?
    public var histogram: Histogram?

    public init(values: UnsafeBufferPointer<Float>, reference: UnsafeBufferPointer<Float>? = nil,
                binning: HistogramBinning? = nil) {
        if let reference { precondition(reference.count == values.count, "reference tensor has another size") }
        count = values.count
        var sum = 0.0, squares = 0.0, maximum = 0.0
        for value in values {
            let w = Double(value)
            sum += w
            squares += w * w
            let m = abs(w)
            if m > maximum { maximum = m }
        }
        let n = Double(max(count, 1))
        let center = sum / n
        var s2 = 0.0, s3 = 0.0, s4 = 0.0
        for value in values {
            let e = Double(value) - center
            let e2 = e * e
            s2 += e2
            s3 += e2 * e
            s4 += e2 * e2
        }
        let moments = CentralMoments(count: Double(count), mean: center, m2: s2, m3: s3, m4: s4)
        frobeniusNorm = squares.squareRoot()
        mean = count > 0 ? center : .nan
        std = moments.variance.squareRoot()
        maxAbs = maximum
        kurtosis = moments.kurtosis
        if let reference {
            var distance = 0.0
            for i in 0..<count {
                let delta = Double(values[i]) - Double(reference[i])
                distance += delta * delta
            }
            distanceFromReference = distance.squareRoot()
        } else {
            distanceFromReference = nil
        }
        if let binning {
            var counts = [Int](repeating: 0, count: binning.binCount + 2)  // [underflow, bins…, overflow]
            for value in values { counts[binning.bin(Double(value)) + 1] += 1 }
            histogram = Histogram(binning: binning, counts: Array(counts[1...binning.binCount]),
                                  underflow: counts[0], overflow: counts[binning.binCount + 1])
        } else {
            histogram = nil
        }
    }

    public init(values: [Float], reference: [Float]? = nil, binning: HistogramBinning? = nil) {
        self = values.withUnsafeBufferPointer { values in
            if let reference {
                return reference.withUnsafeBufferPointer { WeightStatistics(values: values, reference: $0, binning: binning) }
            }
            return WeightStatistics(values: values, reference: nil, binning: binning)
        }
    }

    /// Mean squared displacement, (1/N) Σ (w_t − w_prev)² over all N elements, in float64: how
    /// far a tensor moved between two consecutive checkpoints (per element, so tensors of
    /// different sizes compare). Used for the unembedding.
    public static func meanSquaredDisplacement(_ current: [Float], previous: [Float]) -> Double {
        precondition(current.count == previous.count, "tensors differ in size")
        guard !current.isEmpty else { return .nan }
        var sum = 0.0
        for i in 0..<current.count {
            let delta = Double(current[i]) - Double(previous[i])
            sum += delta * delta
        }
        return sum / Double(current.count)
    }
}
