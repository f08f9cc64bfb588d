import Foundation

/// One document of a Pile-format corpus.
public struct PileDocument: Sendable, Equatable {
    /// 0-based position of the record in its file, counting records a filter skipped, so the
    /// same document keeps the same index whatever filter is applied.
    public var index: Int
    /// 1-based line the record came from (1 for a `.txt` file).
    public var line: Int
    /// The document text.
    public var text: String
    /// `meta.pile_set_name` ("Pile-CC", "Github", ...); nil for `.txt` files and records without one.
    public var setName: String?

    public init(index: Int, line: Int, text: String, setName: String?) {
        self.index = index
        self.line = line
        self.text = text
        self.setName = setName
    }
}

/// Reads documents from a Pile shard without loading it whole.
///
/// Formats (chosen from the file name unless given):
/// - `.jsonl` — one JSON object a line: `{"text": ..., "meta": {"pile_set_name": ...}}`;
/// - `.jsonl.zst` — the same, zstd-compressed (the Pile's distribution format), decompressed as a
///   stream in fixed-size buffers;
/// - `.txt` (or anything else with `format: .text`) — the whole file is one document.
///
/// Blank lines are skipped. A file with no records at all is an error (`.emptyFile`): it is far more
/// likely a wrong path or a failed download than an intentionally empty shard. A filter that
/// excludes every document is not an error.
public struct PileReader: Sendable {
    public enum Format: String, Sendable {
        case jsonl
        case jsonlZstd
        case text

        /// The format implied by a file name, or nil when the name doesn't say.
        public static func infer(fromPath path: String) -> Format? {
            let lower = path.lowercased()
            if lower.hasSuffix(".jsonl.zst") || lower.hasSuffix(".json.zst") { return .jsonlZstd }
            if lower.hasSuffix(".jsonl") || lower.hasSuffix(".json") { return .jsonl }
            if lower.hasSuffix(".txt") { return .text }
            return nil
        }
    }

    public let path: String
    public let format: Format
    /// Only documents whose `pile_set_name` is in this set are produced; nil means all documents.
    /// Documents without a set name (e.g. `.txt` files) never match a filter.
    public let setNames: Set<String>?
    /// Decompressed/raw bytes read per chunk; small values exercise line splitting across chunks.
    let chunkSize: Int

    /// - Throws: `CorpusError(.io)` if `format` is nil and the file name has no known extension.
    public init(path: String, setNames: Set<String>? = nil, format: Format? = nil) throws {
        try self.init(path: path, setNames: setNames, format: format, chunkSize: 1 << 17)
    }

    init(path: String, setNames: Set<String>?, format: Format?, chunkSize: Int) throws {
        guard let resolved = format ?? Format.infer(fromPath: path) else {
            throw CorpusError(.io, path: path,
                              "unknown corpus format: expected a .jsonl, .jsonl.zst or .txt file")
        }
        self.path = path
        self.format = resolved
        self.setNames = setNames
        self.chunkSize = chunkSize
    }

    /// Opens the file and returns a stream positioned before the first document.
    public func makeStream() throws -> PileDocumentStream {
        try PileDocumentStream(reader: self)
    }

    /// Calls `body` for each (filtered) document in file order, streaming.
    public func forEachDocument(_ body: (PileDocument) throws -> Void) throws {
        var stream = try makeStream()
        while let document = try stream.next() { try body(document) }
    }

    /// The first `limit` (filtered) documents, or all of them; reading stops as soon as `limit` is reached.
    public func documents(limit: Int? = nil) throws -> [PileDocument] {
        var result: [PileDocument] = []
        if let limit, limit <= 0 { return result }
        var stream = try makeStream()
        while let document = try stream.next() {
            result.append(document)
            if let limit, result.count >= limit { break }
        }
        return result
    }
}

/// A pull-based stream of documents (Swift's `IteratorProtocol` cannot throw, hence this type).
public struct PileDocumentStream {
    private let path: String
    private let setNames: Set<String>?
    private var lines: LineReader?
    private var wholeFileSource: ByteChunkSource?
    private var recordCount = 0
    private let decoder = JSONDecoder()

    init(reader: PileReader) throws {
        path = reader.path
        setNames = reader.setNames
        let file = try FileByteSource(path: reader.path)
        switch reader.format {
        case .jsonl:
            lines = LineReader(source: file, chunkSize: reader.chunkSize)
        case .jsonlZstd:
            let zstd = try ZstdByteSource(input: file)
            lines = LineReader(source: zstd, chunkSize: reader.chunkSize)
        case .text:
            wholeFileSource = file
        }
    }

    /// The next document that passes the filter, or nil at end of file.
    public mutating func next() throws -> PileDocument? {
        if let source = wholeFileSource {
            wholeFileSource = nil
            return try readWholeFile(source)
        }
        guard lines != nil else { return nil }
        while let bytes = try lines!.nextLine() {
            let lineNumber = lines!.lineNumber
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let index = recordCount
            recordCount += 1
            let record = try decodeRecord(bytes, line: lineNumber)
            if let setNames {
                guard let name = record.meta?.pileSetName, setNames.contains(name) else { continue }
            }
            return PileDocument(index: index, line: lineNumber, text: record.text, setName: record.meta?.pileSetName)
        }
        lines = nil
        if recordCount == 0 {
            throw CorpusError(.emptyFile, path: path, "file contains no JSON lines")
        }
        return nil
    }

    private func readWholeFile(_ source: ByteChunkSource) throws -> PileDocument? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        if bytes.isEmpty { throw CorpusError(.emptyFile, path: path, "file is empty") }
        let text = try decodeUTF8(bytes, path: path, line: nil, what: "file")
        guard setNames == nil else { return nil }
        return PileDocument(index: 0, line: 1, text: text, setName: nil)
    }

    private struct Record: Decodable {
        struct Meta: Decodable {
            var pileSetName: String?
            enum CodingKeys: String, CodingKey { case pileSetName = "pile_set_name" }
        }
        var text: String
        var meta: Meta?
    }

    private func decodeRecord(_ bytes: ArraySlice<UInt8>, line: Int) throws -> Record {
        // Check UTF-8 first so bad bytes get a precise error instead of a generic JSON failure.
        _ = try decodeUTF8(bytes, path: path, line: line, what: "line")
        do {
            return try decoder.decode(Record.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw Self.describe(error, path: path, line: line)
        } catch {
            throw CorpusError(.malformedJSON, path: path, line: line, "malformed JSON: \(error)")
        }
    }

    static func describe(_ error: DecodingError, path: String, line: Int) -> CorpusError {
        func keyPath(_ codingPath: [CodingKey]) -> String {
            codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let full = keyPath(context.codingPath + [key])
            return CorpusError(.missingField, path: path, line: line, "record has no \"\(full)\" field")
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return CorpusError(.malformedJSON, path: path, line: line,
                               "field \"\(keyPath(context.codingPath))\" has the wrong type (expected a string / object)")
        case .dataCorrupted(let context):
            let detail = context.underlyingError.map { " (\($0))" } ?? ""
            return CorpusError(.malformedJSON, path: path, line: line,
                               "malformed JSON: \(context.debugDescription)\(detail)")
        @unknown default:
            return CorpusError(.malformedJSON, path: path, line: line, "malformed JSON: \(error)")
        }
    }
}
