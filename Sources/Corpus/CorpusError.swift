/// The one error type of the Corpus module.
///
/// Data problems are reported to people running a command-line tool, so every error names the file
/// it is about and, for line-oriented formats, the 1-based line number. `kind` lets callers (and
/// tests) tell problems apart without parsing the message.
public struct CorpusError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, independent of where.
    public enum Kind: String, Sendable, Equatable {
        /// The file could not be opened, stat'ed, mapped or read.
        case io
        /// The file has no content at all (or no records, for record formats).
        case emptyFile
        /// A line is not a JSON object of the expected shape.
        case malformedJSON
        /// A JSON record lacks a required field (e.g. `text`).
        case missingField
        /// Bytes that are not valid UTF-8 where text was expected.
        case invalidUTF8
        /// A zstd stream is damaged (libzstd reported an error).
        case corruptCompressedData
        /// A zstd stream ends in the middle of a frame.
        case truncatedCompressedData
        /// The `.idx` file does not start with `MMIDIDX\0\0`.
        case badMagic
        /// The `.idx` version is not 1.
        case unsupportedVersion
        /// The `.idx` dtype code is not one Megatron defines.
        case unknownDType
        /// A file's size disagrees with what its header says.
        case sizeMismatch
        /// A row's (pointer, size) reaches outside the `.bin` file, or the index is inconsistent.
        case inconsistentIndex
        /// A requested row (or range) does not exist.
        case outOfRange
        /// A stored token value cannot be represented as an `Int32` token id.
        case invalidToken
    }

    public let kind: Kind
    /// The file the problem is in.
    public let path: String
    /// 1-based line number, for line-oriented files.
    public let line: Int?
    /// Human-readable detail.
    public let message: String

    public init(_ kind: Kind, path: String, line: Int? = nil, _ message: String) {
        self.kind = kind
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }
}
