import Corpus
import Foundation
import TestSupport
import XCTest

/// Paths and readers shared by the tokenizer tests. Expected values always come from the files
/// written by Tests/Fixtures/generate_tokenizer.py (HF `tokenizers` / `sentencepiece`).
enum Fixtures {
    static let directory = RepositoryPaths.fixtures("tokenizer")
    static let shared = RepositoryPaths.shared
    static let tokenizer20B = shared.appendingPathComponent("tokenizer/20B_tokenizer.json")

    static func requireShared() throws {
        if !FileManager.default.fileExists(atPath: tokenizer20B.path) {
            throw XCTSkip("real data not available at \(shared.path)")
        }
    }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Rebuilds a stress text from its `[[piece, repeat], ...]` description.
    static func text(ofParts parts: Any?) throws -> String {
        let list = try XCTUnwrap(parts as? [[Any]])
        var text = ""
        for part in list {
            let piece = try XCTUnwrap(part[0] as? String)
            let count = try XCTUnwrap(part[1] as? Int)
            text += String(repeating: piece, count: count)
        }
        return text
    }

    static func ids(_ value: Any?) throws -> [Int32] {
        try XCTUnwrap(value as? [Int]).map { Int32($0) }
    }

    /// The `text` field of every line of a JSONL file (optionally zstd-compressed), read by the
    /// project's own Pile reader (libzstd in-process: no `zstd` program needed).
    static func jsonlTexts(_ url: URL) throws -> [String] {
        try PileReader(path: url.path).documents().map(\.text)
    }

    /// Writes `contents` to a fresh temporary file and returns its URL.
    static func temporaryFile(named name: String, contents: Data) throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("neoxprobe-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(name)
        try contents.write(to: url)
        return url
    }
}
