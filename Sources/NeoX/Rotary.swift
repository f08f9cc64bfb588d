import Foundation

/// Rotary position embedding tables, computed the way HF's `GPTNeoXRotaryEmbedding` does in fp32:
/// `inv_freq[i] = 1 / base^(2i / R)` (exponent formed in fp32), `freq = Float(pos) · inv_freq[i]`
/// (one fp32 product), `cos`/`sin` of that in fp32. Only the R/2 distinct columns are stored,
/// since HF's `cat(freqs, freqs)` repeats them.
public struct RotaryTable: Sendable {
    /// R = int(head_dim · rotary_pct): the leading dims of each q/k head that rotate.
    public let dims: Int
    public let positions: Int
    /// `[positions, dims/2]` row-major.
    public let cos: [Float]
    public let sin: [Float]

    public init(dims: Int, positions: Int, base: Double) {
        self.dims = dims
        self.positions = positions
        let half = dims / 2
        var invFreq = [Float](repeating: 0, count: half)
        for i in 0..<half {
            let exponent = Float(2 * i) / Float(dims)
            invFreq[i] = 1 / Float(Foundation.pow(base, Double(exponent)))
        }
        var c = [Float](repeating: 0, count: positions * half)
        var s = [Float](repeating: 0, count: positions * half)
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]
                c[p * half + i] = Foundation.cos(angle)
                s[p * half + i] = Foundation.sin(angle)
            }
        }
        cos = c
        sin = s
    }

    /// Rotates the first `dims` elements of `rows` vectors in place (NeoX `rotate_half` pairing:
    /// element i pairs with i + dims/2). Row r is at `x + r·stride` and has position r.
    @inline(__always)
    func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int) {
        rotate(x, rows: rows, stride: stride, firstPosition: 0, inverse: false)
    }

    /// Rotates `rows` vectors in place, row r having position `firstPosition + r`; `inverse`
    /// rotates by −angle (the transpose, which the backward pass applies to gradients). The one
    /// loop every caller shares — forward, KV-cache decoding, backward — so they agree to the bit:
    /// `y1 = x1·cos − x2·sin`, `y2 = x2·cos + x1·sin` with sin negated for the inverse (exact in IEEE).
    @inline(__always)
    func rotate(_ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int, firstPosition first: Int, inverse: Bool) {
        let half = dims / 2
        guard half > 0 else { return }
        let sign: Float = inverse ? -1 : 1
        cos.withUnsafeBufferPointer { cb in
            sin.withUnsafeBufferPointer { sb in
                for r in 0..<rows {
                    let v = x + r * stride
                    let cr = cb.baseAddress! + (first + r) * half, sr = sb.baseAddress! + (first + r) * half
                    for i in 0..<half {
                        let x1 = v[i], x2 = v[i + half], s = sign * sr[i]
                        v[i] = x1 * cr[i] - x2 * s
                        v[i + half] = x2 * cr[i] + x1 * s
                    }
                }
            }
        }
    }
}
