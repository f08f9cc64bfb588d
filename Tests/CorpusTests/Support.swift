import Foundation
import TestSupport
import XCTest
@testable import Corpus

/// Locations and helpers shared by the Corpus tests.
enum TestPaths {
    static let fixtures = RepositoryPaths.fixtures("corpus")
    static let shared = RepositoryPaths.shared

    /// A file under `shared/`, or an XCTSkip when the shared data isn't present on this machine.
    static func sharedFile(_ relative: String) throws -> String {
        let url = shared.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("shared data not available: \(url.path)")
        }
        return url.path
    }

    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    /// Decodes a committed fixture written by Tests/Fixtures/generate_corpus.py.
    static func loadFixture<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: fixtures.appendingPathComponent(name)))
    }
}

/// A fresh temporary directory, removed by the test's teardown.
final class TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("corpus-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = url.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try write(name, Array(text.utf8))
    }
}

/// FNV-1a 64, the hash generate_corpus.py uses for text fixtures.
func fnv1a64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01B3
    }
    return hash
}

func hex64(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}

/// Asserts `body` throws a `CorpusError` of `kind` whose message mentions every string in `mentions`.
func assertCorpusError<T>(_ kind: CorpusError.Kind,
                          line: Int? = nil,
                          mentions: [String] = [],
                          file: StaticString = #filePath, sourceLine: UInt = #line,
                          _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected CorpusError.\(kind), got success", file: file, line: sourceLine)
    } catch let error as CorpusError {
        XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: sourceLine)
        if let line { XCTAssertEqual(error.line, line, "\(error)", file: file, line: sourceLine) }
        for text in mentions {
            XCTAssertTrue(error.description.contains(text), "'\(error)' should mention '\(text)'",
                          file: file, line: sourceLine)
        }
    } catch {
        XCTFail("expected CorpusError.\(kind), got \(error)", file: file, line: sourceLine)
    }
}
