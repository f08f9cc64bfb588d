/// One entry of tokenizer.json's `added_tokens`, with the flags that change how it is matched.
struct AddedToken: Sendable, Equatable {
    var id: Int32
    var content: String
    var special: Bool
    var singleWord: Bool
    var lstrip: Bool
    var rstrip: Bool
    var normalized: Bool
}

/// Finds added tokens in text the way HF `tokenizers`' AddedVocabulary does: a leftmost-longest
/// scan over the token contents (its Aho-Corasick `LeftmostLongest` mode), with the `single_word`,
/// `lstrip` and `rstrip` adjustments applied to each match.
///
/// The trie root is a dense 256-entry table so that the scan rejects the vast majority of
/// positions with one load; deeper levels use a dictionary because they are rarely visited.
struct AddedTokenMatcher: Sendable {
    private var rootChildren = [Int32](repeating: -1, count: 256)
    private var children: [UInt64: Int32] = [:]
    /// For each trie node, the index into `tokens` of the token ending there, or -1.
    private var terminal: [Int32] = [-1]
    private(set) var tokens: [AddedToken] = []

    var isEmpty: Bool { tokens.isEmpty }

    init(_ tokens: [AddedToken], normalizer: Normalizer?) {
        for token in tokens {
            var content = token.content
            if token.normalized, let normalizer { content = normalizer.apply(content) }
            let bytes = Array(content.utf8)
            guard !bytes.isEmpty else { continue }
            var node: Int32 = 0
            for b in bytes {
                let next: Int32?
                if node == 0 {
                    next = rootChildren[Int(b)] >= 0 ? rootChildren[Int(b)] : nil
                } else {
                    next = children[UInt64(node) << 8 | UInt64(b)]
                }
                if let next {
                    node = next
                } else {
                    let created = Int32(terminal.count)
                    terminal.append(-1)
                    if node == 0 { rootChildren[Int(b)] = created } else { children[UInt64(node) << 8 | UInt64(b)] = created }
                    node = created
                }
            }
            // Like HF, a later duplicate of the same content wins.
            terminal[Int(node)] = Int32(self.tokens.count)
            self.tokens.append(token)
        }
    }

    /// Length of the longest token starting at `p[i]` (within `end`) and its index, if any.
    @inline(__always)
    private func longestMatch(_ p: UnsafePointer<UInt8>, at i: Int, end: Int) -> (length: Int, token: Int)? {
        var node = rootChildren[Int(p[i])]
        if node < 0 { return nil }
        var best: (Int, Int)? = nil
        var j = i + 1
        while true {
            let t = terminal[Int(node)]
            if t >= 0 { best = (j - i, Int(t)) }
            if j >= end { break }
            guard let next = children[UInt64(node) << 8 | UInt64(p[j])] else { break }
            node = next
            j += 1
        }
        return best
    }

    /// Splits `p[start..<end]` into runs of plain text (`emit(range, nil)`) and added tokens
    /// (`emit(range, id)`), in order. Empty plain runs are not emitted.
    func split(_ p: UnsafePointer<UInt8>, from start: Int, to end: Int,
               _ emit: (Int, Int, Int32?) -> Void) {
        if tokens.isEmpty {
            if start < end { emit(start, end, nil) }
            return
        }
        var plainStart = start
        var i = start
        while i < end {
            guard let match = longestMatch(p, at: i, end: end) else { i += 1; continue }
            let token = tokens[match.token]
            var matchStart = i
            var matchEnd = i + match.length
            i = matchEnd  // the automaton resumes after the raw match, whatever the flags do
            if token.singleWord {
                let startsWord = matchStart == start || !Self.endsWithWordCharacter(p, start, matchStart)
                let endsWord = matchEnd == end || !Self.startsWithWordCharacter(p, matchEnd, end)
                if !startsWord || !endsWord { continue }
            }
            if token.lstrip {
                matchStart = Swift.max(Self.trimWhitespaceBackward(p, from: matchStart, floor: start), plainStart)
            }
            if token.rstrip {
                matchEnd = Self.trimWhitespaceForward(p, from: matchEnd, to: end)
            }
            matchStart = Swift.max(matchStart, plainStart)
            if plainStart < matchStart { emit(plainStart, matchStart, nil) }
            emit(matchStart, matchEnd, token.id)
            plainStart = matchEnd
            i = Swift.max(i, matchEnd)
        }
        if plainStart < end { emit(plainStart, end, nil) }
    }

    // MARK: Flag helpers (rare paths: only tokens with the flags set reach them)

    private static func scalars(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> [(offset: Int, scalar: Unicode.Scalar)] {
        var result: [(Int, Unicode.Scalar)] = []
        var i = start
        while i < end {
            let s = decodeScalar(p, i)
            result.append((i, Unicode.Scalar(s.value) ?? "\u{FFFD}"))
            i += s.length
        }
        return result
    }

    /// Rust's `char::is_alphanumeric() || c == '_'`, which HF uses for word boundaries.
    private static func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
        if s == "_" { return true }
        let cls = scalarClass(s.value)
        return cls == .letter || cls == .number
    }

    private static func endsWithWordCharacter(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard let last = scalars(p, start, end).last else { return false }
        return isWordCharacter(last.scalar)
    }

    private static func startsWithWordCharacter(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard start < end else { return false }
        return isWordCharacter(Unicode.Scalar(decodeScalar(p, start).value) ?? "\u{FFFD}")
    }

    private static func trimWhitespaceBackward(_ p: UnsafePointer<UInt8>, from i: Int, floor: Int) -> Int {
        for (offset, scalar) in scalars(p, floor, i).reversed() where !scalar.properties.isWhitespace {
            return offset + String(scalar).utf8.count
        }
        return floor
    }

    private static func trimWhitespaceForward(_ p: UnsafePointer<UInt8>, from i: Int, to end: Int) -> Int {
        for (offset, scalar) in scalars(p, i, end) where !scalar.properties.isWhitespace { return offset }
        return end
    }
}
