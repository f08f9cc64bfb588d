import CBLAS
import Foundation

/// The numeric building blocks of the forward pass. Each works on raw row-major fp32 buffers
/// the caller owns; none allocates except where stated.
enum Kernels {
    /// `y[rows, out] = x[rows, in] · Wᵀ (+ b)` with `W` in `nn.Linear`'s `[out, in]` layout.
    /// Split across `workers` threads by rows (or, for a few rows, by output features), one
    /// single-threaded `cblas_sgemm` per slice; call inside `withEngineThreads`.
    static func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                       weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int,
                       into y: UnsafeMutablePointer<Float>, workers: Int = Kernels.workers) {
        // Several slices per core, handed out dynamically, so a core slowed by other processes
        // does not hold the whole product back; slices stay ≥ 64 rows (or 256 features) for sgemm.
        let byRows = rows >= 64 * workers
        let parts = max(1, min(4 * workers, byRows ? rows / 64 : outFeatures / 256))
        let (xa, wa, ya, ba) = (Int(bitPattern: x), Int(bitPattern: weight), Int(bitPattern: y), bias.map { Int(bitPattern: $0) })
        parallel(parts) { part in
            let x = UnsafePointer<Float>(bitPattern: xa)!, weight = UnsafePointer<Float>(bitPattern: wa)!
            let y = UnsafeMutablePointer<Float>(bitPattern: ya)!, bias = ba.flatMap { UnsafePointer<Float>(bitPattern: $0) }
            let r = byRows ? slice(rows, parts: parts, part: part) : 0..<rows
            let c = byRows ? 0..<outFeatures : slice(outFeatures, parts: parts, part: part)
            guard !r.isEmpty, !c.isEmpty else { return }
            var beta: Float = 0
            if let bias {
                for row in r { (y + row * outFeatures + c.lowerBound).update(from: bias + c.lowerBound, count: c.count) }
                beta = 1
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), Int32(c.count), Int32(inFeatures),
                        1, x + r.lowerBound * inFeatures, Int32(inFeatures), weight + c.lowerBound * inFeatures, Int32(inFeatures),
                        beta, y + r.lowerBound * outFeatures + c.lowerBound, Int32(outFeatures))
        }
    }

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
            var sum = 0.0
            for i in 0..<width { sum += Double(v[i]) }
            let mean = sum / Double(width)
            var sq = 0.0
            for i in 0..<width { let c = Double(v[i]) - mean; sq += c * c }
            let rstd = Float(1 / (sq / Double(width) + Double(eps)).squareRoot())
            let m = Float(mean)
            for i in 0..<width { o[i] = (v[i] - m) * rstd * weight[i] + bias[i] }
        }
    }

    /// The MLP non-linearity, in place.
    static func activate(_ x: UnsafeMutablePointer<Float>, count: Int, _ activation: MLPActivation) {
        switch activation {
        case .geluErf:
            // torch.nn.functional.gelu: 0.5·x·(1 + erf(x/√2))
            let invSqrt2: Float = 0.70710678118654752440
            for i in 0..<count { let v = x[i]; x[i] = 0.5 * v * (1 + erf(v * invSqrt2)) }
        case .geluTanh:
            // HF NewGELUActivation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
            let c: Float = 0.79788456080286535588
            for i in 0..<count { let v = x[i]; x[i] = 0.5 * v * (1 + tanh(c * (v + 0.044715 * v * v * v))) }
        case .relu:
            for i in 0..<count where !(x[i] > 0) { x[i] = 0 }
        }
    }

    /// In-place causal softmax of one score row: the first `visible` entries become
    /// softmax(row[0..<visible]) in fp32 (max-subtracted, as torch), entries `visible..<count` become 0.
    @inline(__always)
    static func causalSoftmaxRow(_ row: UnsafeMutablePointer<Float>, visible: Int, count: Int) {
        let raw = UnsafeMutableRawPointer(row)
        let width = 16
        var j = 0
        var maxVector = SIMD16<Float>(repeating: -.infinity)
        while j + width <= visible {
            maxVector = pointwiseMax(maxVector, raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self))
            j += width
        }
        var maxValue = maxVector.max()
        while j < visible { maxValue = max(maxValue, row[j]); j += 1 }

        j = 0
        var sumVector = SIMD16<Float>(repeating: 0)
        while j + width <= visible {
            let e = exp16(raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self) - maxValue)
            raw.storeBytes(of: e, toByteOffset: j * 4, as: SIMD16<Float>.self)
            sumVector += e
            j += width
        }
        var sum = sumVector.sum()
        while j < visible { let e = expf(row[j] - maxValue); row[j] = e; sum += e; j += 1 }

        let inverse = 1 / sum
        for k in 0..<visible { row[k] *= inverse }
        if visible < count { (row + visible).update(repeating: 0, count: count - visible) }
    }

    /// e^x for 16 lanes (Cephes `expf` scheme: x = n·ln2 + r, |r| ≤ ln2/2, degree-6 polynomial,
    /// scale by 2ⁿ through the exponent bits); within 2 ulp of `expf` on [-87, 88], 0 below.
    @inline(__always)
    static func exp16(_ input: SIMD16<Float>) -> SIMD16<Float> {
        let x = pointwiseMin(pointwiseMax(input, SIMD16(repeating: -87.0)), SIMD16(repeating: 88.0))
        let magic = SIMD16<Float>(repeating: 12582912.0)            // 1.5·2²³: adding it rounds to an integer
        let shifted = x * 1.44269504088896341 + magic
        let n = shifted - magic
        var r = x - n * 0.693359375
        r = r - n * -2.12194440e-4
        var p = SIMD16<Float>(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = p * (r * r) + r + 1
        let bits = unsafeBitCast(shifted, to: SIMD16<UInt32>.self) &- unsafeBitCast(magic, to: SIMD16<UInt32>.self)
        let scale = unsafeBitCast((bits &+ 127) &<< 23, to: SIMD16<Float>.self)
        let result = y * scale
        return result.replacing(with: 0, where: input .< -87.0)
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
