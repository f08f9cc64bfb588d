import Foundation
import TestSupport
import XCTest
@testable import Formats

/// Shared helpers for the Checkpoint* and ModelLocator tests: fixture locations, the expectations
/// `Tests/Fixtures/generate_checkpoints.py` wrote, scratch directories and error assertions.
/// (SHA-256 and the repository paths come from the shared `TestSupport` target.)
enum CheckpointFixtures {
    static let directory = RepositoryPaths.fixtures("checkpoints")
    static let pythiaMini = RepositoryPaths.shared.appendingPathComponent("models/pythia-mini")

    static func url(_ relative: String) -> URL { directory.appendingPathComponent(relative) }

    /// One tensor as the reference libraries read it.
    struct Expected {
        var dtype: String
        var shape: [Int]
        var rawSHA256: String
        var fp32SHA256: String?

        init(_ json: [String: Any]) {
            dtype = json["dtype"] as! String
            shape = (json["shape"] as! [NSNumber]).map(\.intValue)
            rawSHA256 = json["raw_sha256"] as! String
            fp32SHA256 = json["fp32_sha256"] as? String
        }
    }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: url(name))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func tensors(_ json: Any?) throws -> [String: Expected] {
        let raw = try XCTUnwrap(json as? [String: [String: Any]])
        return raw.mapValues(Expected.init)
    }

    static func requirePythiaMini() throws {
        guard FileManager.default.fileExists(atPath: pythiaMini.path) else {
            throw XCTSkip("shared pythia-mini checkpoints not found at \(pythiaMini.path)")
        }
    }
}

/// A fresh directory under the system temporary folder, removed by `tearDown` of the test using it.
func makeScratchDirectory(_ label: String = "neox-checkpoint") throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Asserts `body` throws a `FormatError` (of `kind`, when given) whose path ends with `path` (when given) and whose message
/// (or full description) contains every one of `substrings`, case-insensitively.
func assertFormatError<T>(_ body: @autoclosure () throws -> T, kind: FormatError.Kind? = nil, path: String? = nil, _ substrings: [String],
                        file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error mentioning \(substrings)", file: file, line: line)
    } catch let error as FormatError {
        if let kind { XCTAssertEqual(error.kind, kind, "error '\(error.description)'", file: file, line: line) }
        let text = error.description.lowercased()
        for substring in substrings where !text.contains(substring.lowercased()) {
            XCTFail("error '\(error.description)' does not mention '\(substring)'", file: file, line: line)
        }
        if let path {
            XCTAssert(error.description.contains(path), "error '\(error.description)' does not name \(path)", file: file, line: line)
        }
    } catch {
        XCTFail("expected a FormatError, got \(error)", file: file, line: line)
    }
}

/// Compares entries with what the reference libraries read: names, dtypes, shapes, raw bytes and,
/// for floating-point tensors, the fp32 values.
func assertEntries(_ entries: [String: TensorEntry], match expected: [String: CheckpointFixtures.Expected],
                   _ context: String, file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(Set(entries.keys), Set(expected.keys), "\(context): tensor names", file: file, line: line)
    for (name, want) in expected {
        guard let entry = entries[name] else { continue }
        XCTAssertEqual(entry.dtype.rawValue, want.dtype, "\(context): \(name) dtype", file: file, line: line)
        XCTAssertEqual(entry.shape, want.shape, "\(context): \(name) shape", file: file, line: line)
        XCTAssertEqual(entry.withUnsafeBytes { SHA256.hex($0) }, want.rawSHA256, "\(context): \(name) raw bytes", file: file, line: line)
        if let fp32 = want.fp32SHA256 {
            XCTAssertEqual(SHA256.hex(try entry.float32()), fp32, "\(context): \(name) fp32 values", file: file, line: line)
        }
    }
}

final class CheckpointSupportTests: XCTestCase {
    /// The digest helper agrees with hashlib on a fixture tensor (one that spans several blocks).
    func testSHA256MatchesReference() throws {
        let expected = try CheckpointFixtures.tensors(CheckpointFixtures.json("torch.json")["parameters.bin"])
        let entries = try TorchCheckpoint.read(CheckpointFixtures.url("torch/parameters.bin"))
        let weight = try XCTUnwrap(entries["weight"])
        XCTAssertEqual(weight.withUnsafeBytes { SHA256.hex($0) }, expected["weight"]?.rawSHA256)
        // The byte-array entry point (used for texts and token ids) hashes the same bytes the same way.
        XCTAssertEqual(SHA256.hex(weight.withUnsafeBytes { Array($0) }), expected["weight"]?.rawSHA256)
        // Chunked updates give the same digest as one update.
        var chunked = SHA256()
        weight.withUnsafeBytes { bytes in
            for start in stride(from: 0, to: bytes.count, by: 7) {
                chunked.update(UnsafeRawBufferPointer(rebasing: bytes[start..<min(start + 7, bytes.count)]))
            }
        }
        XCTAssertEqual(chunked.finish(), expected["weight"]?.rawSHA256)
    }
}
