import CBLAS
import Formats
import Foundation

/// The numeric building blocks of the forward pass. Each works on raw row-major fp32 buffers
/// the caller owns; none allocates except where stated.
enum Kernels {
    /// `y[rows, out] = x[rows, in] · Wᵀ (+ b)` with `W` in `nn.Linear`'s `[out, in]` layout.
    ///
    /// Batch-invariant: every row's result is bit-identical whatever the other rows of the call
    /// (a sequence alone or in any batch), given where the rows sit in their sequences (`layout`).
    /// OpenBLAS picks its kernel, and so the summation order, by the product's shape (a small-matrix
    /// kernel below about 10⁶ multiply-adds, K blocked differently from the packed one) and treats
    /// the rows of a panel differently by their place in it (see `RowLayout`). So every `cblas_sgemm`
    /// here has one shape per weight, `linearTileRows` rows by a column slice fixed by `outFeatures`
    /// alone, and a row at position p of its sequence always sits at row `p mod linearTileRows` of
    /// its tile (other rows of a tile that is not full are zeros). Tiles × slices are handed out
    /// dynamically across `workers` threads, so a core slowed by other processes does not hold the
    /// product back; call inside `withEngineThreads`. The default layout takes the rows as one sequence.
    static func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                       weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int,
                       into y: UnsafeMutablePointer<Float>, layout: RowLayout? = nil, workers: Int = Kernels.workers) {
        guard rows > 0, outFeatures > 0 else { return }
        let tile = linearTileRows
        let tiling = LinearTiling(rows: rows, layout: layout ?? .sequences(length: rows), tileRows: tile).tiles
        let columnParts = max(1, min(4 * workers, outFeatures / 256))
        let (xs, ws, ys, bs) = (SharedPointer(x), SharedPointer(weight), SharedPointer(y), bias.map { SharedPointer($0) })
        parallel(tiling.count * columnParts) { item in
            let x = xs.readOnly, weight = ws.readOnly, y = ys.base, bias = bs?.readOnly
            let t = tiling[item / columnParts], c = slice(outFeatures, parts: columnParts, part: item % columnParts)
            guard !c.isEmpty else { return }
            // A full run of consecutive rows reads and writes in place; any other tile goes through
            // scratch, each row at its slot and zeros elsewhere.
            let inPlace = t.isContiguous(tileRows: tile)
            let input = inPlace ? nil : UnsafeMutablePointer<Float>.allocate(capacity: tile * inFeatures)
            let output = inPlace ? nil : UnsafeMutablePointer<Float>.allocate(capacity: tile * c.count)
            defer { input?.deallocate(); output?.deallocate() }
            if let input {
                input.update(repeating: 0, count: tile * inFeatures)
                for (row, slot) in zip(t.rows, t.slots) { (input + slot * inFeatures).update(from: x + row * inFeatures, count: inFeatures) }
            }
            let a = input.map { UnsafePointer($0) } ?? x + t.rows[0] * inFeatures
            let out = output ?? y + t.rows[0] * outFeatures + c.lowerBound
            let ldc = inPlace ? outFeatures : c.count
            var beta: Float = 0
            if let bias {
                for row in 0..<tile {
                    (out + row * ldc).update(from: bias + c.lowerBound, count: c.count)
                }
                beta = 1
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tile), Int32(c.count), Int32(inFeatures),
                        1, a, Int32(inFeatures), weight + c.lowerBound * inFeatures, Int32(inFeatures),
                        beta, out, Int32(ldc))
            if let output {
                for (row, slot) in zip(t.rows, t.slots) { (y + row * outFeatures + c.lowerBound).update(from: output + slot * c.count, count: c.count) }
            }
        }
    }

    /// Rows of every `sgemm` `linear` issues (see there). 128 keeps the per-call re-packing of the
    /// weight slice small next to the product and the padding of a last tile cheap.
    static let linearTileRows = 128

    /// Threads the engine splits work across (the machine's active cores).
    static let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body` with OpenBLAS single-threaded: the engine parallelises by itself (row slices,
    /// attention heads), and OpenBLAS's own pool would otherwise oversubscribe the cores and spin.
    /// Reference-counted, so overlapping forward passes on several threads are fine; the previous
    /// thread count is restored when the last one leaves. Other BLAS users in the process run
    /// single-threaded meanwhile.
    static func withEngineThreads<R>(_ body: () throws -> R) rethrows -> R {
        BLASThreads.enter()
        defer { BLASThreads.leave() }
        return try body()
    }

    /// LayerNorm over the last dimension, as `torch.nn.LayerNorm`: biased variance, eps inside
    /// the square root, then affine. Moments are accumulated in Float64.
    static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float,
                          into y: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let v = x + r * width, o = y + r * width
            let (m, rstd) = layerNormStatistics(v, width: width, eps: eps)
            for i in 0..<width { o[i] = (v[i] - m) * rstd * weight[i] + bias[i] }
        }
    }

    /// The first half of `layerNorm`: `y = (x − mean)·rstd` per row (TransformerLens's
    /// `hook_normalized`), recording each row's mean and scale = 1/rstd (`hook_scale`) when asked.
    /// `affine` afterwards gives exactly `layerNorm`'s output (the same operations in the same order).
    static func layerNormNormalize(_ x: UnsafePointer<Float>, rows: Int, width: Int, eps: Float,
                                   into y: UnsafeMutablePointer<Float>,
                                   means: UnsafeMutablePointer<Float>? = nil, scales: UnsafeMutablePointer<Float>? = nil) {
        for r in 0..<rows {
            let v = x + r * width, o = y + r * width
            let (m, rstd) = layerNormStatistics(v, width: width, eps: eps)
            for i in 0..<width { o[i] = (v[i] - m) * rstd }
            means?[r] = m
            scales?[r] = 1 / rstd
        }
    }

    /// `y = y·weight + bias` per row of `width`, in place (the LayerNorm's affine part).
    static func affine(_ y: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                       weight: UnsafePointer<Float>, bias: UnsafePointer<Float>) {
        for r in 0..<rows {
            let o = y + r * width
            for i in 0..<width { o[i] = o[i] * weight[i] + bias[i] }
        }
    }

    /// A row's mean and 1/√(biased variance + eps), accumulated in Float64: the one computation
    /// the forward LayerNorm and its backward share, so the backward normalises exactly as the
    /// forward did.
    @inline(__always)
    static func layerNormStatistics(_ v: UnsafePointer<Float>, width: Int, eps: Float) -> (mean: Float, rstd: Float) {
        var sum = 0.0
        for i in 0..<width { sum += Double(v[i]) }
        let mean = sum / Double(width)
        var sq = 0.0
        for i in 0..<width { let c = Double(v[i]) - mean; sq += c * c }
        return (Float(mean), Float(1 / (sq / Double(width) + Double(eps)).squareRoot()))
    }

    /// The MLP non-linearity, in place. Each case is one loop over `KernelMath` functions, which
    /// the compiler vectorises.
    static func activate(_ x: UnsafeMutablePointer<Float>, count: Int, _ activation: MLPActivation) {
        switch activation {
        case .geluErf:
            // torch.nn.functional.gelu: 0.5·x·(1 + erf(x/√2))
            let invSqrt2: Float = 0.70710678118654752440
            for i in 0..<count { let v = x[i]; x[i] = 0.5 * v * (1 + KernelMath.erf(v * invSqrt2)) }
        case .geluTanh:
            // HF NewGELUActivation: 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³),
            // computed as x / (1 + e^(−2u)) (the same function; no cancellation for x < 0).
            let c: Float = 0.79788456080286535588
            for i in 0..<count {
                let v = x[i], u = c * (v + 0.044715 * v * v * v)
                x[i] = v / (1 + KernelMath.exp(-2 * u))
            }
        case .relu:
            for i in 0..<count { let v = x[i]; x[i] = v > 0 ? v : 0 }
        }
    }

    /// In-place causal softmax of one score row: the first `visible` entries become
    /// softmax(row[0..<visible]) in fp32 (max-subtracted, as torch), entries `visible..<count` become 0.
    /// Three passes over a row that stays in L1 (max, exp, scale), each a loop the compiler vectorises.
    @inline(__always)
    static func causalSoftmaxRow(_ row: UnsafeMutablePointer<Float>, visible: Int, count: Int) {
        let maxValue = rowMax(row, count: visible)
        for j in 0..<visible { row[j] = KernelMath.exp(row[j] - maxValue) }
        let inverse = 1 / rowSum(row, count: visible)
        for j in 0..<visible { row[j] *= inverse }
        if visible < count { (row + visible).update(repeating: 0, count: count - visible) }
    }

    /// max(row[0..<count]) (−∞ for an empty row), with eight running maxima so it vectorises.
    @inline(__always)
    static func rowMax(_ row: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j + 8 <= count {
            for l in 0..<8 { let v = row[j + l]; lanes[l] = v > lanes[l] ? v : lanes[l] }
            j += 8
        }
        var m = -Float.infinity
        for l in 0..<8 { m = lanes[l] > m ? lanes[l] : m }
        while j < count { m = row[j] > m ? row[j] : m; j += 1 }
        return m
    }

    /// Σ row[0..<count] with eight running partial sums (vectorises; fp32 as torch's own reduction).
    @inline(__always)
    static func rowSum(_ row: UnsafePointer<Float>, count: Int) -> Float {
        let raw = UnsafeRawPointer(row)
        var lanes = SIMD8<Float>(repeating: 0)
        var j = 0
        while j + 8 <= count { lanes += raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self); j += 8 }
        var s = lanes.sum()
        while j < count { s += row[j]; j += 1 }
        return s
    }

    /// Runs `body(worker)` for `workers` disjoint workers on the global concurrent queue.
    static func parallel(_ workers: Int, _ body: @Sendable (Int) -> Void) {
        if workers <= 1 { body(0); return }
        DispatchQueue.concurrentPerform(iterations: workers, execute: body)
    }

    /// Splits `0..<count` into `parts` near-equal contiguous ranges; returns range `part`.
    static func slice(_ count: Int, parts: Int, part: Int) -> Range<Int> {
        let lo = count * part / parts, hi = count * (part + 1) / parts
        return lo..<hi
    }
}

/// The process-wide OpenBLAS thread setting while engine passes run (see `Kernels.withEngineThreads`).
enum BLASThreads {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var active = 0
    nonisolated(unsafe) private static var saved: Int32 = 1

    static func enter() {
        lock.lock(); defer { lock.unlock() }
        if active == 0 {
            saved = openblas_get_num_threads()
            if saved != 1 { openblas_set_num_threads(1) }
        }
        active += 1
    }

    static func leave() {
        lock.lock(); defer { lock.unlock() }
        active -= 1
        if active == 0 && saved != 1 { openblas_set_num_threads(saved) }
    }
}
