import CBLAS
import Formats
import Foundation

/// The numeric building blocks of the backward pass, the transposes of `Kernels`: each takes the
/// gradient of a forward kernel's output and returns (or accumulates) the gradients of its inputs.
/// Raw row-major fp32 buffers the caller owns; none allocates except where stated.
extension Kernels {
    /// `dW[out, in] += dYᵀ · X` for `y = x · Wᵀ`: dY `[rows, out]`, X `[rows, in]`. Split by output
    /// features (each worker owns a band of dW's rows), one single-threaded sgemm per band.
    static func weightGradient(_ dY: UnsafePointer<Float>, _ x: UnsafePointer<Float>, rows: Int,
                               outFeatures: Int, inFeatures: Int, into dW: UnsafeMutablePointer<Float>,
                               workers: Int = Kernels.workers) {
        guard rows > 0 else { return }
        let parts = max(1, min(4 * workers, outFeatures / 64))
        let (ds, xs, ws) = (SharedPointer(dY), SharedPointer(x), SharedPointer(dW))
        parallel(parts) { part in
            let c = slice(outFeatures, parts: parts, part: part)
            guard !c.isEmpty else { return }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(c.count), Int32(inFeatures), Int32(rows),
                        1, ds.readOnly + c.lowerBound, Int32(outFeatures), xs.readOnly, Int32(inFeatures),
                        1, ws.base + c.lowerBound * inFeatures, Int32(inFeatures))
        }
    }

    /// `dX[rows, in] (+)= dY · W` for `y = x · Wᵀ` with W `[out, in]`. Split like `linear`: by rows,
    /// or by input features for a few rows. `accumulate: false` overwrites dX.
    static func inputGradient(_ dY: UnsafePointer<Float>, rows: Int, outFeatures: Int,
                              weight: UnsafePointer<Float>, inFeatures: Int, into dX: UnsafeMutablePointer<Float>,
                              accumulate: Bool, workers: Int = Kernels.workers) {
        guard rows > 0 else { return }
        let byRows = rows >= 64 * workers
        let parts = max(1, min(4 * workers, byRows ? rows / 64 : inFeatures / 64))
        let (ds, ws, xs) = (SharedPointer(dY), SharedPointer(weight), SharedPointer(dX))
        let beta: Float = accumulate ? 1 : 0
        parallel(parts) { part in
            let r = byRows ? slice(rows, parts: parts, part: part) : 0..<rows
            let c = byRows ? 0..<inFeatures : slice(inFeatures, parts: parts, part: part)
            guard !r.isEmpty, !c.isEmpty else { return }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(r.count), Int32(c.count), Int32(outFeatures),
                        1, ds.readOnly + r.lowerBound * outFeatures, Int32(outFeatures), ws.readOnly + c.lowerBound, Int32(inFeatures),
                        beta, xs.base + r.lowerBound * inFeatures + c.lowerBound, Int32(inFeatures))
        }
    }

    /// `db[c] += Σ_rows dY[r, c]` (the bias gradient), summed in Float64 over rows in order.
    static func columnSums(_ dY: UnsafePointer<Float>, rows: Int, width: Int, into db: UnsafeMutablePointer<Float>) {
        let parts = max(1, min(workers, width / 64))
        let (ds, bs) = (SharedPointer(dY), SharedPointer(db))
        parallel(parts) { part in
            let c = slice(width, parts: parts, part: part)
            var sums = [Double](repeating: 0, count: c.count)
            for r in 0..<rows {
                let row = ds.readOnly + r * width + c.lowerBound
                for j in 0..<c.count { sums[j] += Double(row[j]) }
            }
            for j in 0..<c.count { bs.base[c.lowerBound + j] += Float(sums[j]) }
        }
    }

    /// LayerNorm backward for `y = (x − μ)·rstd·γ + β`, moments recomputed from x exactly as the
    /// forward computes them: `dx += rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))` with `dx̂ = dy·γ`, and
    /// (when given) `dγ += Σ dy·x̂`, `dβ += Σ dy` over rows, reduced in Float64 in a fixed order.
    static func layerNormBackward(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: UnsafePointer<Float>,
                                  eps: Float, outputGradient dy: UnsafePointer<Float>,
                                  addingInto dx: UnsafeMutablePointer<Float>,
                                  weightGradient dGamma: UnsafeMutablePointer<Float>?,
                                  biasGradient dBeta: UnsafeMutablePointer<Float>?) {
        let parts = max(1, min(4 * workers, rows / 16))
        let partials = UnsafeMutablePointer<Double>.allocate(capacity: parts * 2 * width)
        partials.initialize(repeating: 0, count: parts * 2 * width)
        defer { partials.deallocate() }
        let (xs, gs, ys, ds, ps) = (SharedPointer(x), SharedPointer(weight), SharedPointer(dy), SharedPointer(dx), SharedPointer(partials))
        parallel(parts) { part in
            let gamma = gs.readOnly
            let sumGamma = ps.base + part * 2 * width, sumBeta = sumGamma + width
            let xhat = UnsafeMutablePointer<Float>.allocate(capacity: 2 * width)
            defer { xhat.deallocate() }
            let dxhat = xhat + width
            for r in slice(rows, parts: parts, part: part) {
                let v = xs.readOnly + r * width, g = ys.readOnly + r * width, o = ds.base + r * width
                let (m, rstd) = Kernels.layerNormStatistics(v, width: width, eps: eps)
                var a = 0.0, b = 0.0
                for i in 0..<width {
                    xhat[i] = (v[i] - m) * rstd
                    dxhat[i] = g[i] * gamma[i]
                    a += Double(dxhat[i])
                    b += Double(dxhat[i]) * Double(xhat[i])
                    sumGamma[i] += Double(g[i]) * Double(xhat[i])
                    sumBeta[i] += Double(g[i])
                }
                let meanA = Float(a / Double(width)), meanB = Float(b / Double(width))
                for i in 0..<width { o[i] += rstd * (dxhat[i] - meanA - xhat[i] * meanB) }
            }
        }
        for i in 0..<width {
            var sg = 0.0, sb = 0.0
            for part in 0..<parts { sg += partials[part * 2 * width + i]; sb += partials[part * 2 * width + width + i] }
            dGamma?[i] += Float(sg)
            dBeta?[i] += Float(sb)
        }
    }

    /// `grad[i] *= act'(pre[i])`: the MLP non-linearity's derivative at its (stored) input.
    static func activationBackward(_ pre: UnsafePointer<Float>, gradient grad: UnsafeMutablePointer<Float>,
                                   count: Int, _ activation: MLPActivation) {
        switch activation {
        case .geluErf:
            // d/dx 0.5·x·(1 + erf(x/√2)) = 0.5·(1 + erf(x/√2)) + x·φ(x), φ the standard normal density.
            let invSqrt2: Float = 0.70710678118654752440, invSqrt2Pi: Float = 0.39894228040143267794
            for i in 0..<count {
                let v = pre[i]
                grad[i] *= 0.5 * (1 + KernelMath.erf(v * invSqrt2)) + v * invSqrt2Pi * KernelMath.exp(-0.5 * v * v)
            }
        case .geluTanh:
            // 0.5·x·(1 + tanh u), u = c·(x + 0.044715·x³); with s = σ(2u) = (1 + tanh u)/2:
            // d/dx = s + x·2s(1 − s)·c·(1 + 3·0.044715·x²).
            let c: Float = 0.79788456080286535588
            for i in 0..<count {
                let v = pre[i], u = c * (v + 0.044715 * v * v * v)
                let s = 1 / (1 + KernelMath.exp(-2 * u))
                grad[i] *= s + v * 2 * s * (1 - s) * c * (1 + 3 * 0.044715 * v * v)
            }
        case .relu:
            for i in 0..<count { grad[i] = pre[i] > 0 ? grad[i] : 0 }   // torch: zero gradient at 0
        }
    }
}

extension RotaryTable {
    /// The transpose of `apply`: maps the gradient of rotated vectors back to the gradient of the
    /// vectors before rotation (rotation by −angle): `dx1 = dy1·cos + dy2·sin`, `dx2 = dy2·cos − dy1·sin`.
    @inline(__always)
    func applyTranspose(_ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int) {
        rotate(x, rows: rows, stride: stride, firstPosition: 0, inverse: true)
    }
}

extension NeoXModel {
    /// Backward of `causalSelfAttention` for every (sequence, head): from the gradient of the
    /// head-merged output `dOut` `[B·T, d]`, the stored post-rotary `qkv` `[B·T, 3d]` and the
    /// stored output `out`, writes `dqkv` `[B·T, 3d]` (same interleave, gradients w.r.t. the
    /// pre-rotary projections). Probabilities are recomputed block by block of queries, never
    /// held for the whole sequence: with P = softmax(S), `dS = P ∘ (dP − rowsum(dO ∘ O))`,
    /// `dP = dO·Vᵀ`, `dV = Pᵀ·dO`, `dQ = scale·dS·K`, `dK = scale·dSᵀ·Q`.
    func causalSelfAttentionBackward(qkv: UnsafePointer<Float>, out: UnsafePointer<Float>,
                                     outputGradient dOut: UnsafePointer<Float>, batch B: Int, length T: Int,
                                     into dqkv: UnsafeMutablePointer<Float>, queryBlock: Int) {
        let H = config.numHeads, dh = config.headDim, d = config.hiddenSize
        let ld = 3 * d
        let scale = Float(1 / Double(dh).squareRoot())
        let rotary = self.rotary
        let (qs, os, gs, ds) = (SharedPointer(qkv), SharedPointer(out), SharedPointer(dOut), SharedPointer(dqkv))
        Kernels.parallel(B * H) { item in
            let P = UnsafeMutablePointer<Float>.allocate(capacity: 2 * queryBlock * T + queryBlock)
            defer { P.deallocate() }
            let dP = P + queryBlock * T, rowDot = dP + queryBlock * T
            let b = item / H, h = item % H
            let q = qs.readOnly + b * T * ld + h * 3 * dh, k = q + dh, v = q + 2 * dh
            let o = os.readOnly + b * T * d + h * dh, dO = gs.readOnly + b * T * d + h * dh
            let dq = ds.base + b * T * ld + h * 3 * dh, dk = dq + dh, dv = dq + 2 * dh
            for t in 0..<T { (dk + t * ld).update(repeating: 0, count: dh); (dv + t * ld).update(repeating: 0, count: dh) }
            var i0 = 0
            while i0 < T {
                let rows = min(queryBlock, T - i0), keys = i0 + rows
                // P = causal softmax(scale · q·kᵀ), recomputed exactly as the forward computed it.
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keys), Int32(dh),
                            scale, q + i0 * ld, Int32(ld), k, Int32(ld), 0, P, Int32(keys))
                for r in 0..<rows { Kernels.causalSoftmaxRow(P + r * keys, visible: i0 + r + 1, count: keys) }
                // dP = dO · vᵀ;  rowDot[r] = dO[r] · O[r] = Σ_j P[r, j]·dP[r, j].
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keys), Int32(dh),
                            1, dO + i0 * d, Int32(d), v, Int32(ld), 0, dP, Int32(keys))
                for r in 0..<rows {
                    var s = 0.0
                    for c in 0..<dh { s += Double(dO[(i0 + r) * d + c]) * Double(o[(i0 + r) * d + c]) }
                    rowDot[r] = Float(s)
                }
                // dV[0..<keys] += Pᵀ · dO
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(keys), Int32(dh), Int32(rows),
                            1, P, Int32(keys), dO + i0 * d, Int32(d), 1, dv, Int32(ld))
                // dS = P ∘ (dP − rowDot), in place of dP (masked entries have P = 0).
                for r in 0..<rows {
                    let pr = P + r * keys, gr = dP + r * keys, D = rowDot[r]
                    for j in 0..<keys { gr[j] = pr[j] * (gr[j] - D) }
                }
                // dQ[block] = scale · dS · k;  dK[0..<keys] += scale · dSᵀ · q[block]
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(dh), Int32(keys),
                            scale, dP, Int32(keys), k, Int32(ld), 0, dq + i0 * ld, Int32(ld))
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(keys), Int32(dh), Int32(rows),
                            scale, dP, Int32(keys), q + i0 * ld, Int32(ld), 1, dk, Int32(ld))
                i0 += rows
            }
            // Back through the rotation to the projections' outputs.
            rotary.applyTranspose(dq, rows: T, stride: ld)
            rotary.applyTranspose(dk, rows: T, stride: ld)
        }
    }
}
