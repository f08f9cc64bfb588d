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
        // Composition forms = canonical composition of the (correctly ordered) decomposition.
        case .nfc:
            let decomposed = Self.withCanonicalOrder(text) { $0.decomposedStringWithCanonicalMapping }
            return Self.composeHangulLVT(decomposed.precomposedStringWithCanonicalMapping)
        case .nfd: return Self.withCanonicalOrder(text) { $0.decomposedStringWithCanonicalMapping }
        case .nfkc:
            let decomposed = Self.withCanonicalOrder(text) { $0.decomposedStringWithCompatibilityMapping }
            return Self.composeHangulLVT(decomposed.precomposedStringWithCanonicalMapping)
        case .nfkd: return Self.withCanonicalOrder(text) { $0.decomposedStringWithCompatibilityMapping }
        case .lowercase: return text.lowercased()
        case .sequence(let items): return items.reduce(text) { $1.apply($0) }
        }
    }

    /// Normalizes valid UTF-8 bytes; nil when they are known to be unchanged.
    ///
    /// The Unicode forms are applied only to the stretches that need it: a boundary just before an
    /// ASCII character is always safe (ASCII is a starter that never composes with what precedes
    /// it), so a region runs from the last ASCII character before a suspicious byte (the possible
    /// base of a composition) to the next ASCII character after it. This keeps a 30 MB mostly-ASCII
    /// document with a few curly quotes from being round-tripped through Foundation as a whole.
    func normalize(_ p: UnsafePointer<UInt8>, from start: Int, to end: Int) -> [UInt8]? {
        if leavesUnchanged(p, from: start, to: end) { return nil }
        let threshold: UInt8
        switch self {
        case .nfc: threshold = 0xCC
        case .nfd: threshold = 0xC3
        case .nfkc, .nfkd: threshold = 0x80
        case .lowercase, .sequence:
            let text = String(decoding: UnsafeBufferPointer(start: p + start, count: end - start), as: UTF8.self)
            return Array(apply(text).utf8)
        }
        var out = [UInt8]()
        out.reserveCapacity(end - start + 16)
        var copied = start  // bytes before this are already in `out`
        var i = start
        while i < end {
            if p[i] < threshold { i += 1; continue }
            // Region start: the last ASCII byte before i (or the piece start).
            var regionStart = i
            while regionStart > copied && p[regionStart - 1] >= 0x80 { regionStart -= 1 }
            if regionStart > copied { regionStart -= 1 }
            var regionEnd = i
            while regionEnd < end && p[regionEnd] >= 0x80 { regionEnd += 1 }
            out.append(contentsOf: UnsafeBufferPointer(start: p + copied, count: regionStart - copied))
            let text = String(decoding: UnsafeBufferPointer(start: p + regionStart, count: regionEnd - regionStart), as: UTF8.self)
            out.append(contentsOf: apply(text).utf8)
            copied = regionEnd
            i = regionEnd
        }
        out.append(contentsOf: UnsafeBufferPointer(start: p + copied, count: end - copied))
        return out
    }

    /// Foundation does not re-sort combining marks that a decomposition brings in after an
    /// existing mark of higher class (U+0301 U+0F73 must become U+0F71 U+0F72 U+0301). When the
    /// output is not in canonical order, sort each run of non-starters (stable, by combining class)
    /// and run the form again on the now-ordered text, so composition sees the right neighbours.
    static func withCanonicalOrder(_ text: String, _ form: (String) -> String) -> String {
        let once = form(text)
        var previousClass: UInt8 = 0
        var ordered = true
        for s in once.unicodeScalars {
            let cls = s.properties.canonicalCombiningClass.rawValue
            if cls != 0 && cls < previousClass { ordered = false; break }
            previousClass = cls
        }
        if ordered { return once }
        var scalars = Array(once.unicodeScalars)
        var runStart = 0
        for i in 0...scalars.count {
            let isStarter = i == scalars.count || scalars[i].properties.canonicalCombiningClass.rawValue == 0
            if isStarter {
                if i - runStart > 1 {
                    let sorted = scalars[runStart..<i].enumerated().sorted {
                        let a = $0.element.properties.canonicalCombiningClass.rawValue
                        let b = $1.element.properties.canonicalCombiningClass.rawValue
                        return a != b ? a < b : $0.offset < $1.offset
                    }.map(\.element)
                    scalars.replaceSubrange(runStart..<i, with: sorted)
                }
                runStart = i + 1
            }
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return form(String(view))
    }

    /// Foundation's composition (checked on Linux, swift-foundation with Swift 6.3) leaves a
    /// precomposed Hangul LV syllable followed by a trailing jamo T uncomposed (U+AC00 U+11A8
    /// should become U+AC01), while HF / Unicode compose it. This pass finishes that one step;
    /// the fixtures' full-BMP NFC check guards the rest of Foundation's behaviour.
    static func composeHangulLVT(_ text: String) -> String {
        let scalars = text.unicodeScalars
        var needsPass = false
        var previousIsLV = false
        for s in scalars {
            let v = s.value
            if previousIsLV && v >= 0x11A8 && v <= 0x11C2 { needsPass = true; break }
            previousIsLV = v >= 0xAC00 && v <= 0xD7A3 && (v - 0xAC00) % 28 == 0
        }
        guard needsPass else { return text }
        var out = String.UnicodeScalarView()
        var pending: UInt32? = nil  // an LV syllable waiting to see whether a T follows
        for s in scalars {
            let v = s.value
            if let lv = pending, v >= 0x11A8 && v <= 0x11C2 {
                out.append(Unicode.Scalar(lv + (v - 0x11A7))!)
                pending = nil
                continue
            }
            if let lv = pending { out.append(Unicode.Scalar(lv)!); pending = nil }
            if v >= 0xAC00 && v <= 0xD7A3 && (v - 0xAC00) % 28 == 0 { pending = v } else { out.append(s) }
        }
        if let lv = pending { out.append(Unicode.Scalar(lv)!) }
        return String(out)
    }

    private func maxByte(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> UInt8 {
        var m: UInt8 = 0
        for i in start..<end { m = Swift.max(m, p[i]) }
        return m
    }
}
