import Foundation
import TestSupport
import XCTest

/// What the end-to-end tests share: the real inputs in ../shared, scratch directories, and the
/// checks every failing command must pass.
enum CLI {
    static let shared = ProbeFixtures.shared
    static let suite = ProbeFixtures.pythiaMini
    static let model = suite.appendingPathComponent("step2000")
    static let tokenizer = shared.appendingPathComponent("tokenizer/20B_tokenizer.json")
    static let dataset = shared.appendingPathComponent("data/minipile/document")
    static let validation = shared.appendingPathComponent("data/minipile/val.jsonl.zst")
    static let lambada = shared.appendingPathComponent("data/lambada/lambada_test.jsonl")

    /// Skips (never fails) when the shared real data is absent; a missing binary still fails.
    static func requireShared() throws {
        _ = try CommandRunner.executable()
        for url in [model, tokenizer, dataset.appendingPathExtension("idx"), validation, lambada]
        where !FileManager.default.fileExists(atPath: url.path) {
            throw XCTSkip("needs ../shared (\(url.path) is absent)")
        }
    }

    static func run(_ arguments: [String]) throws -> CommandRunner.Outcome {
        try CommandRunner.run(arguments)
    }

    /// A fresh scratch directory, removed when the test ends.
    static func temporaryDirectory(_ test: XCTestCase) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("neoxprobe-e2e-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    static func json(_ outcome: CommandRunner.Outcome, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(outcome.status, 0, outcome.standardError, file: file, line: line)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: outcome.standardOutput) as? [String: Any], "not a JSON object",
                             file: file, line: line)
    }

    static func fixture(_ area: String, _ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: RepositoryPaths.fixtures(area).appendingPathComponent(name))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

/// How a command may fail.
enum FailureKind {
    /// Bad data or files: `Error: <description>` alone, no usage block, exit status 1.
    case data
    /// A bad argument (ArgumentParser's `ValidationError` or an unparsable value): the message and
    /// the usage block, exit status 64 (EX_USAGE).
    case argument
}

/// Checks a failed run: the exit status of an orderly failure (a trap or abort ends the process
/// by a signal, whose number would be the status instead), the expected shape of the message,
/// and that the message names what was wrong.
func assertFails(_ outcome: CommandRunner.Outcome, as kind: FailureKind, mentioning needles: [String],
                 file: StaticString = #filePath, line: UInt = #line) {
    let stderr = outcome.standardError
    switch kind {
    case .data:
        XCTAssertEqual(outcome.status, 1, "expected an orderly failure (exit 1), got \(outcome.status): \(stderr)", file: file, line: line)
        XCTAssertFalse(stderr.contains("Usage:"), "a data error must not print the usage block: \(stderr)", file: file, line: line)
    case .argument:
        XCTAssertEqual(outcome.status, 64, "expected an argument error (exit 64), got \(outcome.status): \(stderr)", file: file, line: line)
        XCTAssertTrue(stderr.contains("Usage:"), "an argument error prints the usage block: \(stderr)", file: file, line: line)
    }
    XCTAssertTrue(stderr.hasPrefix("Error: "), "errors print as 'Error: …': \(stderr)", file: file, line: line)
    for needle in needles {
        XCTAssertTrue(stderr.contains(needle), "the error should name \(needle): \(stderr)", file: file, line: line)
    }
    XCTAssertTrue(outcome.standardOutput.isEmpty, "a failed run prints nothing on standard output", file: file, line: line)
}
