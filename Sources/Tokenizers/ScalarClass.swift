/// The four character classes the GPT-2 pre-tokenizer regex distinguishes.
///
/// `\s` in Oniguruma's Unicode mode is U+0009–U+000D, U+0085 and the Zs/Zl/Zp categories, which is
/// exactly the Unicode White_Space property; `\p{L}` / `\p{N}` are the L* / N* general categories.
enum ScalarClass: UInt8 {
    case letter = 0
    case number = 1
    case whitespace = 2
    case other = 3

    /// Classification straight from the Unicode properties (the slow path, used to fill tables).
    static func compute(_ value: UInt32) -> ScalarClass {
        guard let scalar = Unicode.Scalar(value) else { return .other }
        let properties = scalar.properties
        if properties.isWhitespace { return .whitespace }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }
}

/// Precomputed classes for the Basic Multilingual Plane, so the scanner never asks the (slow)
/// Unicode property APIs for the characters that make up nearly all real text.
/// Built once, lazily and thread-safely (Swift global initialisation).
let basicPlaneScalarClasses: [ScalarClass] = (0..<0x10000).map { ScalarClass.compute(UInt32($0)) }

@inline(__always)
func scalarClass(_ value: UInt32) -> ScalarClass {
    if value < 0x10000 {
        return basicPlaneScalarClasses.withUnsafeBufferPointer { $0[Int(value)] }
    }
    return ScalarClass.compute(value)
}

/// Decodes the scalar starting at `p[i]` in valid UTF-8; returns its value and byte length.
@inline(__always)
func decodeScalar(_ p: UnsafePointer<UInt8>, _ i: Int) -> (value: UInt32, length: Int) {
    let b0 = UInt32(p[i])
    if b0 < 0x80 { return (b0, 1) }
    if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
    if b0 < 0xF0 {
        return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
    }
    return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6
            | UInt32(p[i + 3] & 0x3F), 4)
}
