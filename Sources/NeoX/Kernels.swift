import CBLAS
import Foundation

/// The numeric building blocks of the forward pass. Each works on raw row-major fp32 buffers
/// the caller owns; none allocates except where stated.
enum Kernels {
    /// `y[rows, out] = x[rows, in] · Wᵀ (+ b)` with `W` in `nn.Linear`'s `[out, in]` layout.
    static func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                       weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int,
                       into y: UnsafeMutablePointer<Float>) {
        var beta: Float = 0
        if let bias {
            for r in 0..<rows { (y + r * outFeatures).update(from: bias, count: outFeatures) }
            beta = 1
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures), Int32(inFeatures),
                    1, x, Int32(inFeatures), weight, Int32(inFeatures), beta, y, Int32(outFeatures))
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
