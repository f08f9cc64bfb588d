/// A fixed-bin histogram of activations streamed in chunks, with the bins of `HistogramBinning`.
///
/// The sweep fixes one binning per site from the reference checkpoint (R = max |x| it reaches on
/// the evaluation tokens, `RangeAccumulator`), so bin i is the same interval at every step and
/// growth beyond the reference's range shows as underflow/overflow rather than moving bins.
public struct HistogramAccumulator: Sendable, Equatable {
    public let binning: HistogramBinning
    /// [underflow, bin 0 … bin B−1, overflow].
    private var counts: [Int]

    public init(binning: HistogramBinning) {
        self.binning = binning
        counts = [Int](repeating: 0, count: binning.binCount + 2)
    }

    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        for value in values { counts[binning.bin(Double(value)) + 1] += 1 }
    }

    public mutating func add(_ values: [Float]) { values.withUnsafeBufferPointer { add($0) } }

    public var histogram: Histogram {
        Histogram(binning: binning, counts: Array(counts[1...binning.binCount]), underflow: counts[0],
                  overflow: counts[binning.binCount + 1])
    }

    /// Elements added (bins, underflow and overflow).
    public var total: Int { counts.reduce(0, +) }
}

/// max |x| over a stream (non-finite values ignored): the range R of a reference's histogram.
public struct RangeAccumulator: Sendable, Equatable {
    public private(set) var maxAbs = 0.0

    public init() {}

    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        var maximum = maxAbs
        for value in values {
            let m = abs(Double(value))
            if m > maximum, m.isFinite { maximum = m }
        }
        maxAbs = maximum
    }

    /// The binning over [−R, R] (R = 1 when everything was zero).
    public func binning(binCount: Int) -> HistogramBinning {
        HistogramBinning(range: maxAbs > 0 ? maxAbs : 1, binCount: binCount)
    }
}
