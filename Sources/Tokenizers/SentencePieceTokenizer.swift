import CSentencePiece
import Formats
import Foundation

/// A SentencePiece `.model` tokenizer (for GPT-NeoX-architecture models that ship one), backed by
/// libsentencepiece through the CSentencePiece shim.
///
/// Like ``BPETokenizer`` it never adds BOS/EOS: `encode` is SentencePiece's plain `Encode`.
/// The native processor is immutable after loading and its encode/decode are const, so one
/// instance can be shared across threads; hence `@unchecked Sendable`.
public final class SentencePieceTokenizer: TextTokenizer, @unchecked Sendable {
    public let name: String
    public let vocabularySize: Int
    private let handle: OpaquePointer

    /// Loads a `.model` file.
    public init(contentsOf url: URL) throws {
        let path = url.path
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw TokenizerError.unreadable(path: path, reason: "file does not exist or is not readable")
        }
        var message = [CChar](repeating: 0, count: 1024)
        guard let handle = csp_load(path, &message, message.count) else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw TokenizerError.sentencePiece(path: path, reason: reason.isEmpty ? "could not load model" : reason)
        }
        self.handle = handle
        self.name = path
        self.vocabularySize = Int(csp_vocab_size(handle))
    }

    deinit { csp_free(handle) }

    public func encode(_ text: String) throws -> [Int32] {
        var text = text
        return try text.withUTF8 { try encodeValidated($0) }
    }

    public func encode(utf8 bytes: [UInt8]) throws -> [Int32] {
        try bytes.withUnsafeBufferPointer { buffer in
            if let offset = UTF8Validation.firstInvalidOffset(buffer) {
                throw TokenizerError.invalidUTF8(input: "input text", offset: offset)
            }
            return try encodeValidated(buffer)
        }
    }

    private func encodeValidated(_ buffer: UnsafeBufferPointer<UInt8>) throws -> [Int32] {
        if buffer.isEmpty { return [] }
        var capacity = buffer.count + 16
        while true {
            var ids = [Int32](repeating: 0, count: capacity)
            let produced = buffer.withMemoryRebound(to: CChar.self) { text in
                csp_encode(handle, text.baseAddress, text.count, &ids, Int64(capacity))
            }
            if produced < 0 { throw TokenizerError.sentencePiece(path: name, reason: "encode failed") }
            if produced <= capacity { return Array(ids.prefix(Int(produced))) }
            capacity = Int(produced)
        }
    }

    /// Ids outside the vocabulary are an error here (libsentencepiece rejects them).
    public func decode(_ ids: [Int32]) throws -> String {
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
            throw TokenizerError.sentencePiece(path: name, reason: "id \(bad) is outside the vocabulary (size \(vocabularySize))")
        }
        var capacity = ids.count * 8 + 16
        while true {
            var bytes = [CChar](repeating: 0, count: capacity)
            let produced = csp_decode(handle, ids, Int64(ids.count), &bytes, Int64(capacity))
            if produced < 0 { throw TokenizerError.sentencePiece(path: name, reason: "decode failed") }
            if produced <= capacity {
                return String(decoding: bytes.prefix(Int(produced)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            capacity = Int(produced)
        }
    }
}
