/// Scalar elementwise functions written so that a plain loop over them vectorises: only
/// arithmetic, bit casts and selects (no branches, no libm calls). Loops in `Kernels` apply them
/// to whole rows; LLVM turns those loops into SIMD code on the target ISA (Haswell AVX2/FMA on x86-64 by default, see Package.swift).
enum KernelMath {
    /// e^x within 2 ulp of `expf` on [-87, 88]; 0 below -87 (softmax never needs larger inputs:
    /// they are max-subtracted, so ≤ 0). Cephes scheme: x = n·ln2 + r with |r| ≤ ln2/2, a
    /// degree-6 polynomial for e^r, then scale by 2ⁿ by building the float's exponent bits.
    @inline(__always)
    static func exp(_ input: Float) -> Float {
        let x = input < -87 ? -87 : (input > 88 ? 88 : input)
        let magic: Float = 12582912.0                          // 1.5·2²³: adding it rounds to an integer
        let shifted = x * 1.44269504088896341 + magic          // n + magic, n = round(x / ln2)
        let n = shifted - magic
        var r = x - n * 0.693359375                            // ln2 split in two for an exact r
        r = r - n * -2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = p * (r * r) + r + 1
        let scale = Float(bitPattern: (shifted.bitPattern &- magic.bitPattern &+ 127) &<< 23)
        return input < -87 ? 0 : y * scale
    }

    /// erf(x) to within 4·10⁻⁷ absolute (≈ 3 ulp near ±1) in fp32: x·P(x²)/Q(x²), P of degree 6 and
    /// Q of degree 4, fitted (Lawson-weighted least squares) on |x| ≤ 3.92; beyond that erf rounds to ±1
    /// and the clamp gives erf(±3.92) = ±(1 − 3·10⁻⁸).
    @inline(__always)
    static func erf(_ input: Float) -> Float {
        let x = input < -3.92 ? -3.92 : (input > 3.92 ? 3.92 : input)
        let t = x * x
        var p: Float = 1.9919216388e-08
        p = p * t + -1.9944253377e-06
        p = p * t + 1.4903523739e-04
        p = p * t + 3.9750385208e-03
        p = p * t + 5.1404421517e-02
        p = p * t + 2.0616398858e-01
        p = p * t + 1.1283787805e+00
        var q: Float = 1.0246300000e-03
        q = q * t + 1.4893721800e-02
        q = q * t + 1.1758555980e-01
        q = q * t + 5.1603686480e-01
        q = q * t + 1
        return x * p / q
    }
}
