/// GPT-2's reversible byte ⇄ printable-character map.
///
/// Byte-level BPE vocabularies store tokens as strings of these characters, so that every byte
/// (including spaces and control bytes) has a visible stand-in: printable Latin-1 bytes map to
/// themselves, the other 68 bytes to U+0100… in byte order (space becomes "Ġ", newline "Ċ").
enum ByteLevel {
    /// `characters[b]` is the stand-in scalar for byte `b`.
    static let characters: [Unicode.Scalar] = {
        var isPrintable = [Bool](repeating: false, count: 256)
        for b in 0x21...0x7E { isPrintable[b] = true }
        for b in 0xA1...0xAC { isPrintable[b] = true }
        for b in 0xAE...0xFF { isPrintable[b] = true }
        var result = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 0
        for b in 0..<256 {
            if isPrintable[b] {
                result[b] = Unicode.Scalar(UInt32(b))!
            } else {
                result[b] = Unicode.Scalar(256 + next)!
                next += 1
            }
        }
        return result
    }()

    /// The inverse map, stand-in scalar → byte.
    static let bytes: [Unicode.Scalar: UInt8] = {
        var map = [Unicode.Scalar: UInt8]()
        for (b, c) in characters.enumerated() { map[c] = UInt8(b) }
        return map
    }()

    /// The raw bytes a vocabulary token stands for, or nil if it contains a character outside the map.
    static func decode(token: String) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let b = bytes[scalar] else { return nil }
            out.append(b)
        }
        return out
    }
}
