import Foundation

/// The subset of HF `tokenizers` normalizers that byte-level BPE files use.
///
/// Unicode forms come from Foundation; each form has a cheap byte-level test for text it provably
/// leaves unchanged (pure ASCII, or for NFC everything below U+0300), so the common English case
/// never pays for a String round trip.
indirect enum Normalizer: Sendable, Equatable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case sequence([Normalizer])

    /// Parses the `normalizer` object of tokenizer.json (nil / JSON null means "no normalizer").
    static func parse(_ json: Any?, path: String) throws -> Normalizer? {
        guard let json, !(json is NSNull) else { return nil }
        guard let object = json as? [String: Any], let type = object["type"] as? String else {
            throw TokenizerError.malformed(path: path, reason: "normalizer has no \"type\"")
        }
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Sequence":
            guard let items = object["normalizers"] as? [Any] else {
                throw TokenizerError.malformed(path: path, reason: "Sequence normalizer has no \"normalizers\" list")
            }
            return .sequence(try items.compactMap { try parse($0, path: path) })
        default:
            throw TokenizerError.unsupported(path: path, feature: "normalizer type \"\(type)\"")
        }
    }

    /// True when the normalizer certainly maps these bytes to themselves.
    func leavesUnchanged(_ p: UnsafePointer<UInt8>, from start: Int, to end: Int) -> Bool {
        switch self {
        case .nfc: return maxByte(p, start, end) < 0xCC  // every scalar < U+0300
        case .nfd: return maxByte(p, start, end) < 0xC3  // every scalar < U+00C0
        case .nfkc, .nfkd: return maxByte(p, start, end) < 0x80
        case .lowercase:
            for i in start..<end where p[i] >= 0x41 && (p[i] <= 0x5A || p[i] >= 0x80) { return false }
            return true
        case .sequence(let items):
            return items.allSatisfy { $0.leavesUnchanged(p, from: start, to: end) }
        }
    }

    /// Applies the normalizer to a string.
    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase: return text.lowercased()
        case .sequence(let items): return items.reduce(text) { $1.apply($0) }
        }
    }

    /// Normalizes valid UTF-8 bytes; nil when they are known to be unchanged.
    func normalize(_ p: UnsafePointer<UInt8>, from start: Int, to end: Int) -> [UInt8]? {
        if leavesUnchanged(p, from: start, to: end) { return nil }
        let text = String(decoding: UnsafeBufferPointer(start: p + start, count: end - start), as: UTF8.self)
        return Array(apply(text).utf8)
    }

    private func maxByte(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> UInt8 {
        var m: UInt8 = 0
        for i in start..<end { m = Swift.max(m, p[i]) }
        return m
    }
}
