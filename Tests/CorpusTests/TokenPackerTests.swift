import Foundation
import XCTest
@testable import Corpus

/// Byte-level stand-in tokenizer: each UTF-8 byte b becomes id b + 1 (so 0 stays free for EOD).
private func byteEncode(_ text: String) -> [Int32] { text.utf8.map { Int32($0) + 1 } }

final class TokenPackerTests: XCTestCase {
    func testDocumentsJoinedWithEODIntoConsecutiveWindows() throws {
        // Stream: a b EOD c d e EOD f EOD   (the empty document adds nothing)
        let docs = ["ab", "cde", "", "f"]
        let a = Int32(UInt8(ascii: "a")) + 1
        let windows = try TokenPacker.pack(documents: docs, windowLength: 3, encode: byteEncode)
        XCTAssertEqual(windows, [[a, a + 1, 0], [a + 2, a + 3, a + 4], [0, a + 5, 0]])
    }

    func testPartialLastWindowDroppedOrKept() throws {
        let docs = ["ab", "cde", "f"]  // 9 tokens
        let dropped = try TokenPacker.pack(documents: docs, windowLength: 4, encode: byteEncode)
        XCTAssertEqual(dropped.map(\.count), [4, 4])
        let kept = try TokenPacker.pack(documents: docs, windowLength: 4, keepsPartialWindow: true, encode: byteEncode)
        XCTAssertEqual(kept.map(\.count), [4, 4, 1])
        XCTAssertEqual(kept.last, [0])
        XCTAssertEqual(Array(kept.joined()), docs.flatMap { byteEncode($0) + [0] })
        // Exactly full: nothing extra even when keeping partial windows.
        let exact = try TokenPacker.pack(documents: ["abc"], windowLength: 4, keepsPartialWindow: true, encode: byteEncode)
        XCTAssertEqual(exact.map(\.count), [4])
    }

    func testCustomEODAndIncrementalUse() {
        var packer = TokenPacker(windowLength: 2, endOfDocument: -1)
        packer.append(document: [5, 6, 7])
        XCTAssertEqual(packer.bufferedTokenCount, 4)
        XCTAssertEqual(packer.nextWindow(), [5, 6])
        XCTAssertEqual(packer.nextWindow(), [7, -1])
        XCTAssertNil(packer.nextWindow())
        packer.append(document: [])
        XCTAssertEqual(packer.bufferedTokenCount, 0)
        packer.append(document: [8])
        XCTAssertNil(packer.finish())  // partial windows not kept by default
        XCTAssertEqual(packer.bufferedTokenCount, 0)
    }

    func testLongStreamCompactsAndStaysExact() throws {
        let docs = (0..<500).map { String(repeating: "x", count: $0 % 37) }
        let windows = try TokenPacker.pack(documents: docs, windowLength: 16, keepsPartialWindow: true, encode: byteEncode)
        XCTAssertEqual(Array(windows.joined()), docs.flatMap { $0.isEmpty ? [] : byteEncode($0) + [0] })
        XCTAssertTrue(windows.dropLast().allSatisfy { $0.count == 16 })
    }

    func testStopsReadingOnceEnoughWindows() throws {
        var pulled = 0
        var encoded = 0
        let windows = try TokenPacker.pack(windowLength: 5, maxWindows: 2, nextDocument: {
            pulled += 1
            return pulled <= 1000 ? "abcdef" : nil  // 7 tokens each
        }, encode: { encoded += 1; return byteEncode($0) })
        XCTAssertEqual(windows.count, 2)
        XCTAssertEqual(pulled, 2)  // 14 tokens >= 10 needed
        XCTAssertEqual(encoded, 2)
        XCTAssertEqual(try TokenPacker.pack(documents: ["abc"], windowLength: 2, maxWindows: 0, encode: byteEncode), [])
    }

    func testEncodeErrorsPropagate() {
        struct Boom: Error {}
        XCTAssertThrowsError(try TokenPacker.pack(documents: ["a"], windowLength: 2, encode: { _ in throw Boom() })) {
            XCTAssertTrue($0 is Boom)
        }
    }

    func testPacksPileShardLazily() throws {
        let path = try TestPaths.sharedFile("data/minipile/val.jsonl.zst")
        let reader = try PileReader(path: path)
        var encoded = 0
        let windows = try TokenPacker.pack(reader: reader, windowLength: 2049, maxWindows: 3) { text in
            encoded += 1
            return byteEncode(text)
        }
        XCTAssertEqual(windows.map(\.count), [2049, 2049, 2049])
        let documents = try reader.documents()
        var stream: [Int32] = []
        for document in documents.prefix(encoded) where !document.text.isEmpty {
            stream += byteEncode(document.text) + [0]
        }
        XCTAssertGreaterThanOrEqual(stream.count, 3 * 2049)
        XCTAssertEqual(Array(windows.joined()), Array(stream.prefix(3 * 2049)))
        XCTAssertLessThan(encoded, documents.count)
    }
}
