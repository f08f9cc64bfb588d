import Foundation
import XCTest
import TestSupport

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

    /// The `text` field of every line of a JSONL file (optionally zstd-compressed).
    static func jsonlTexts(_ url: URL) throws -> [String] {
        let data: Data
        if url.pathExtension == "zst" {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/zstd")
            process.arguments = ["-dc", url.path]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "zstd -dc \(url.path) failed")
        } else {
            data = try Data(contentsOf: url)
        }
        var texts: [String] = []
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
            texts.append(try XCTUnwrap(object["text"] as? String))
        }
        return texts
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
