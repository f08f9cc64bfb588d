import Foundation

/// One LAMBADA example, split into the context the model sees and the target it must predict.
///
/// The split is exactly lm-evaluation-harness's `lambada_openai`:
/// `context = text.split(' ')[:-1] | join(' ')`, `target = ' ' + text.split(' ')[-1]`, i.e. Python's
/// `text.rsplit(' ', 1)` on the single ASCII space (not on whitespace in general). Consecutive,
/// leading or trailing spaces are therefore significant: `"a  b"` gives context `"a "` and target
/// `" b"`; `"a b "` gives context `"a b"` and target `" "`. A text with no space at all gives an
/// empty context and `" " + text` (where `rsplit(...)[1]` would fail, the harness's template
/// does this).
public struct LambadaExample: Sendable, Equatable {
    public let text: String
    public let context: String
    public let target: String

    public init(text: String) {
        self.text = text
        let (context, target) = Self.split(text)
        self.context = context
        self.target = target
    }

    /// Splits at the last U+0020 SPACE. Works on UTF-8 bytes: a 0x20 byte is always a whole space
    /// character in UTF-8, and slicing bytes avoids Swift's grapheme-cluster boundaries (a space
    /// followed by a combining mark must still split like Python does).
    public static func split(_ text: String) -> (context: String, target: String) {
        let bytes = text.utf8
        guard let space = bytes.lastIndex(of: 0x20) else { return ("", " " + text) }
        let context = String(decoding: bytes[..<space], as: UTF8.self)
        let lastWord = String(decoding: bytes[bytes.index(after: space)...], as: UTF8.self)
        return (context, " " + lastWord)
    }
}

/// Loads the LAMBADA test set (`lambada_test.jsonl`, one `{"text": ...}` a line).
public enum LambadaDataset {
    /// All examples in file order. Blank lines are skipped.
    ///
    /// - Throws: `CorpusError` naming the file and line for unreadable files, invalid UTF-8,
    ///   malformed JSON, a missing or non-string `text`, and for a file with no examples.
    public static func load(path: String) throws -> [LambadaExample] {
        try load(path: path, chunkSize: 1 << 17)
    }

    /// `chunkSize`: bytes read at a time (small ones put lines across chunk edges, for tests).
    static func load(path: String, chunkSize: Int) throws -> [LambadaExample] {
        var lines = LineReader(source: try FileByteSource(path: path), chunkSize: chunkSize)
        let decoder = JSONDecoder()
        struct Record: Decodable { var text: String }
        var examples: [LambadaExample] = []
        while let bytes = try lines.nextLine() {
            let line = lines.lineNumber
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            _ = try decodeUTF8(bytes, path: path, line: line, what: "line")
            do {
                let text = try decoder.decode(Record.self, from: Data(bytes)).text
                // A blank text has no last word to predict (scoring it would fail far from here,
                // on a token position of -1).
                guard text.contains(where: { !$0.isWhitespace }) else {
                    throw CorpusError(.missingField, path: path, line: line, "LAMBADA text is blank (no last word to predict)")
                }
                examples.append(LambadaExample(text: text))
            } catch let error as DecodingError {
                throw PileDocumentStream.describe(error, path: path, line: line)
            }
        }
        if examples.isEmpty {
            throw CorpusError(.emptyFile, path: path, "file contains no LAMBADA examples")
        }
        return examples
    }
}
