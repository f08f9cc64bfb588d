/// The GPT-2 / ByteLevel pre-tokenizer split, as a single forward scanner.
///
/// It reproduces the leftmost-first semantics of the regex
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// without a regex engine: every alternative is decided by looking at most three bytes ahead, and
/// every byte is visited a bounded number of times, so the cost is linear even for 100k-space runs.
enum GPT2PreTokenizer {
    /// Calls `emit(start, end)` for each pre-token of `p[start..<end]` (valid UTF-8), in order.
    @inline(__always)
    static func split(_ p: UnsafePointer<UInt8>, from start: Int, to end: Int,
                      _ emit: (Int, Int) -> Void) {
        var i = start
        while i < end {
            let byte = p[i]
            // Contractions: 's 't 'm 'd and 're 've 'll (lower case only, as in the regex).
            if byte == 0x27, i + 1 < end {
                let n1 = p[i + 1]
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {
                    emit(i, i + 2); i += 2; continue
                }
                if i + 2 < end {
                    let n2 = p[i + 2]
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        emit(i, i + 3); i += 3; continue
                    }
                }
            }
            // ` ?X+` for X in letters, numbers, other: an optional single U+0020 then a class run.
            if byte == 0x20, i + 1 < end {
                let next = decodeScalar(p, i + 1)
                let cls = scalarClass(next.value)
                if cls != .whitespace {
                    let runEnd = endOfRun(p, from: i + 1 + next.length, to: end, cls)
                    emit(i, runEnd); i = runEnd; continue
                }
            }
            let first = decodeScalar(p, i)
            let cls = scalarClass(first.value)
            if cls != .whitespace {
                let runEnd = endOfRun(p, from: i + first.length, to: end, cls)
                emit(i, runEnd); i = runEnd; continue
            }
            // `\s+(?!\S)` then `\s+`: a whitespace run that is not followed by a non-space keeps all
            // of it; otherwise it gives its last character to the next token (unless it has only one).
            let runEnd = endOfRun(p, from: i + first.length, to: end, .whitespace)
            if runEnd == end {
                emit(i, runEnd); i = runEnd; continue
            }
            var lastStart = runEnd - 1
            while p[lastStart] & 0xC0 == 0x80 { lastStart -= 1 }
            let stop = lastStart > i ? lastStart : runEnd
            emit(i, stop); i = stop
        }
    }

    /// First byte offset at or after `i` whose scalar is not of class `cls`.
    @inline(__always)
    static func endOfRun(_ p: UnsafePointer<UInt8>, from i: Int, to end: Int, _ cls: ScalarClass) -> Int {
        var j = i
        while j < end {
            let b = p[j]
            if b < 0x80 {
                if asciiScalarClasses[Int(b)] != cls { return j }
                j += 1
            } else {
                let s = decodeScalar(p, j)
                if scalarClass(s.value) != cls { return j }
                j += s.length
            }
        }
        return j
    }
}

/// ASCII classes as a small tuple-free array so the common case avoids the big table.
let asciiScalarClasses: [ScalarClass] = (0..<128).map { ScalarClass.compute(UInt32($0)) }
