import Foundation

/// A text ⇄ token-id mapping that the engine, corpus and probe modules share.
///
/// Conforming types are immutable values (or handles to immutable native objects), so one instance
/// can be used from many tasks at once.
public protocol TextTokenizer: Sendable {
    /// Number of ids the tokenizer can produce (highest id + 1, added tokens included).
    var vocabularySize: Int { get }
    /// Where the tokenizer came from (usually its file path), recorded in results for traceability.
    var name: String { get }
    /// Encodes `text` without adding any BOS/EOS or other special tokens.
    func encode(_ text: String) throws -> [Int32]
    /// Encodes raw bytes; throws ``TokenizerError/invalidUTF8(input:offset:)`` if they are not UTF-8.
    func encode(utf8 bytes: [UInt8]) throws -> [Int32]
    /// Turns ids back into text. Special tokens are kept (like transformers' default
    /// `skip_special_tokens=False`), so `decode(encode(x)) == x` for normalization-stable text.
    func decode(_ ids: [Int32]) throws -> String
}

/// Everything that can go wrong while finding, loading or running a tokenizer.
/// Each message names the file or input concerned so a failing run can be diagnosed from its log.
public enum TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file could not be read at all.
    case unreadable(path: String, reason: String)
    /// The file was read but is not a well-formed tokenizer description.
    case malformed(path: String, reason: String)
    /// The file uses a feature this implementation does not support (named in `feature`).
    case unsupported(path: String, feature: String)
    /// The input is not valid UTF-8; `offset` is the byte offset of the first bad byte.
    case invalidUTF8(input: String, offset: Int)
    /// No tokenizer was found; `searched` lists every place that was looked at, in order.
    case notFound(searched: [String])
    /// libsentencepiece reported an error.
    case sentencePiece(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read tokenizer file \(path): \(reason)"
        case let .malformed(path, reason):
            return "malformed tokenizer file \(path): \(reason)"
        case let .unsupported(path, feature):
            return "unsupported tokenizer feature in \(path): \(feature)"
        case let .invalidUTF8(input, offset):
            return "\(input) is not valid UTF-8: invalid byte sequence at byte offset \(offset)"
        case let .notFound(searched):
            return "no tokenizer found; looked in:\n" + searched.map { "  - \($0)" }.joined(separator: "\n")
        case let .sentencePiece(path, reason):
            return "sentencepiece error for \(path): \(reason)"
        }
    }
}
