import Foundation
import XCTest
@testable import NeoX

/// Shared helpers for the Checkpoint* and ModelLocator tests: fixture locations, the expectations
/// `Tests/Fixtures/generate_checkpoints.py` wrote, SHA-256 (the fixtures compare tensors by digest),
/// scratch directories and error assertions.
enum CheckpointFixtures {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let directory = repositoryRoot.appendingPathComponent("Tests/Fixtures/checkpoints")
    static let pythiaMini = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/models/pythia-mini")

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

/// Asserts `body` throws a `NeoXError` whose path ends with `path` (when given) and whose message
/// (or full description) contains every one of `substrings`, case-insensitively.
func assertNeoXError<T>(_ body: @autoclosure () throws -> T, path: String? = nil, _ substrings: [String],
                        file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error mentioning \(substrings)", file: file, line: line)
    } catch let error as NeoXError {
        let text = error.description.lowercased()
        for substring in substrings where !text.contains(substring.lowercased()) {
            XCTFail("error '\(error.description)' does not mention '\(substring)'", file: file, line: line)
        }
        if let path {
            XCTAssert(error.description.contains(path), "error '\(error.description)' does not name \(path)", file: file, line: line)
        }
    } catch {
        XCTFail("expected a NeoXError, got \(error)", file: file, line: line)
    }
}

/// SHA-256 (FIPS 180-4), enough to compare tensors with the digests Python's hashlib wrote.
struct SHA256Digest {
    private var state: [UInt32] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var digest = SHA256Digest()
        digest.update(bytes)
        return digest.finish()
    }

    static func hex(_ floats: [Float]) -> String {
        floats.withUnsafeBytes { hex($0) } // little-endian host, as hashlib saw "<f4"
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        length += UInt64(bytes.count)
        var index = 0
        if !pending.isEmpty {
            while pending.count < 64 && index < bytes.count { pending.append(bytes[index]); index += 1 }
            if pending.count == 64 {
                pending.withUnsafeBytes { compress($0.baseAddress!) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        while bytes.count - index >= 64 {
            compress(bytes.baseAddress! + index)
            index += 64
        }
        while index < bytes.count { pending.append(bytes[index]); index += 1 }
    }

    mutating func finish() -> String {
        let bits = length &* 8
        var tail = pending
        tail.append(0x80)
        while tail.count % 64 != 56 { tail.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        tail.withUnsafeBytes { block in
            for offset in stride(from: 0, to: block.count, by: 64) { compress(block.baseAddress! + offset) }
        }
        return state.map { String(format: "%08x", $0) }.joined()
    }

    private mutating func compress(_ block: UnsafeRawPointer) {
        var w = [UInt32](repeating: 0, count: 64)
        for i in 0..<16 { w[i] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        for i in 16..<64 {
            let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var a = state[0], b = state[1], c = state[2], d = state[3]
        var e = state[4], f = state[5], g = state[6], h = state[7]
        for i in 0..<64 {
            let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
            let choice = (e & f) ^ (~e & g)
            let t1 = h &+ s1 &+ choice &+ Self.k[i] &+ w[i]
            let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
            let majority = (a & b) ^ (a & c) ^ (b & c)
            let t2 = s0 &+ majority
            h = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
        }
        state[0] &+= a; state[1] &+= b; state[2] &+= c; state[3] &+= d
        state[4] &+= e; state[5] &+= f; state[6] &+= g; state[7] &+= h
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
        XCTAssertEqual(SHA256Digest.hex(entry.rawBytes), want.rawSHA256, "\(context): \(name) raw bytes", file: file, line: line)
        if let fp32 = want.fp32SHA256 {
            XCTAssertEqual(SHA256Digest.hex(try entry.float32()), fp32, "\(context): \(name) fp32 values", file: file, line: line)
        }
    }
}

final class CheckpointSupportTests: XCTestCase {
    /// The digest helper agrees with hashlib on a fixture tensor (one that spans several blocks).
    func testSHA256MatchesReference() throws {
        let expected = try CheckpointFixtures.tensors(CheckpointFixtures.json("torch.json")["parameters.bin"])
        let entries = try TorchCheckpoint.read(CheckpointFixtures.url("torch/parameters.bin"))
        let weight = try XCTUnwrap(entries["weight"])
        XCTAssertEqual(SHA256Digest.hex(weight.rawBytes), expected["weight"]?.rawSHA256)
        // Chunked updates give the same digest as one update.
        var chunked = SHA256Digest()
        let bytes = weight.rawBytes
        for start in stride(from: 0, to: bytes.count, by: 7) {
            chunked.update(UnsafeRawBufferPointer(rebasing: bytes[start..<min(start + 7, bytes.count)]))
        }
        XCTAssertEqual(chunked.finish(), expected["weight"]?.rawSHA256)
    }
}
