/// Element types checkpoints store. Compute is always fp32; these say how to widen.
public enum DType: String, Sendable, CaseIterable {
    case f16 = "F16", bf16 = "BF16", f32 = "F32", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    /// Only floating-point tensors can be model weights.
    public var isFloatingPoint: Bool {
        switch self {
        case .f16, .bf16, .f32, .f64: return true
        default: return false
        }
    }

    /// How many of `count` elements at `source` are NaN or ±inf, read from the exponent bits
    /// (all ones) without widening; 0 for integer types.
    public func nonFiniteCount(_ source: UnsafeRawPointer, count: Int) -> Int {
        func countAllOnes<Bits: FixedWidthInteger>(_ type: Bits.Type, exponent: Bits) -> Int {
            var found = 0
            for i in 0..<count where source.loadUnaligned(fromByteOffset: MemoryLayout<Bits>.size * i, as: Bits.self) & exponent == exponent {
                found += 1
            }
            return found
        }
        switch self {
        case .f16: return countAllOnes(UInt16.self, exponent: 0x7C00)
        case .bf16: return countAllOnes(UInt16.self, exponent: 0x7F80)
        case .f32: return countAllOnes(UInt32.self, exponent: 0x7F80_0000)
        case .f64: return countAllOnes(UInt64.self, exponent: 0x7FF0_0000_0000_0000)
        default: return 0
        }
    }

    /// Widens `count` elements of this dtype at `source` into fp32 at `destination`.
    /// Unaligned reads are safe: mmapped zip entries need not be aligned.
    public func widen(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        switch self {
        case .f32:
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        case .f16:
            for i in 0..<count {
                let bits = source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                destination[i] = Float(Float16(bitPattern: bits))
            }
        case .bf16:
            for i in 0..<count {
                let bits = source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                destination[i] = Float(bitPattern: UInt32(bits) << 16)
            }
        case .f64:
            for i in 0..<count {
                destination[i] = Float(source.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
            }
        default:
            preconditionFailure("widen called on non-float dtype \(self)")
        }
    }
}
