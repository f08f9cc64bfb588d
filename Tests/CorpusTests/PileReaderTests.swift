import Foundation
import XCTest
@testable import Corpus

/// Shapes of Tests/Fixtures/corpus/minipile.json and tiny_expected.json.
private struct MinipileFixture: Decodable {
    struct Split: Decodable {
        struct Sample: Decodable {
            var index: Int
            var setName: String?
            var utf8Length: Int
            var fnv1a64: String
            var prefix: String
        }
        var count: Int
        var setCounts: [String: Int]
        var utf8Lengths: [Int]
        var scalarLengths: [Int]
        var setNames: [String?]
        var totalUTF8Bytes: Int
        var samples: [Sample]
    }
    var train: Split
    var val: Split
}

private struct TinyRecord: Decodable {
    var index: Int
    var text: String
    var setName: String?
    var utf8Length: Int
    var fnv1a64: String
}

final class PileReaderTests: XCTestCase {
    private func check(_ documents: [PileDocument], against split: MinipileFixture.Split,
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(documents.count, split.count, file: file, line: line)
        XCTAssertEqual(documents.map(\.index), Array(0..<split.count), file: file, line: line)
        XCTAssertEqual(documents.map { $0.text.utf8.count }, split.utf8Lengths, file: file, line: line)
        XCTAssertEqual(documents.map { $0.text.unicodeScalars.count }, split.scalarLengths, file: file, line: line)
        XCTAssertEqual(documents.map(\.setName), split.setNames, file: file, line: line)
        XCTAssertEqual(documents.reduce(0) { $0 + $1.text.utf8.count }, split.totalUTF8Bytes, file: file, line: line)
        for sample in split.samples {
            let document = documents[sample.index]
            XCTAssertEqual(document.setName, sample.setName, file: file, line: line)
            XCTAssertEqual(document.text.utf8.count, sample.utf8Length, file: file, line: line)
            XCTAssertEqual(hex64(fnv1a64(document.text.utf8)), sample.fnv1a64, "doc \(sample.index)", file: file, line: line)
            let prefix = String(String.UnicodeScalarView(document.text.unicodeScalars.prefix(80)))
            XCTAssertEqual(prefix, sample.prefix, file: file, line: line)
        }
    }

    func testMinipileTrainMatchesPython() throws {
        let path = try TestPaths.sharedFile("data/minipile/train.jsonl.zst")
        let fixture = try TestPaths.loadFixture("minipile.json", as: MinipileFixture.self)
        let reader = try PileReader(path: path)
        XCTAssertEqual(reader.format, .jsonlZstd)
        check(try reader.documents(), against: fixture.train)
    }

    func testMinipileValMatchesPythonWithTinyBuffers() throws {
        let path = try TestPaths.sharedFile("data/minipile/val.jsonl.zst")
        let fixture = try TestPaths.loadFixture("minipile.json", as: MinipileFixture.self)
        check(try PileReader(path: path).documents(), against: fixture.val)
        // Lines (avg. tens of KB) straddle thousands of 997-byte chunks.
        let small = try PileReader(path: path, setNames: nil, format: nil, chunkSize: 997)
        check(try small.documents(), against: fixture.val)
    }

    func testSetNameFilterKeepsOriginalIndices() throws {
        let path = try TestPaths.sharedFile("data/minipile/train.jsonl.zst")
        let fixture = try TestPaths.loadFixture("minipile.json", as: MinipileFixture.self)
        var seen: [Int] = []
        try PileReader(path: path, setNames: ["PerlDocs"]).forEachDocument { document in
            XCTAssertEqual(document.setName, "PerlDocs")
            seen.append(document.index)
        }
        let expected = fixture.train.setNames.enumerated().filter { $0.element == "PerlDocs" }.map(\.offset)
        XCTAssertEqual(seen, expected)
        XCTAssertEqual(seen.count, fixture.train.setCounts["PerlDocs"])
    }

    func testLimitStopsEarly() throws {
        let path = try TestPaths.sharedFile("data/minipile/train.jsonl.zst")
        let documents = try PileReader(path: path, setNames: ["Github", "PythonDocs"]).documents(limit: 5)
        XCTAssertEqual(documents.count, 5)
        XCTAssertTrue(documents.allSatisfy { $0.setName == "Github" || $0.setName == "PythonDocs" })
    }

    func testTinyPlainAndMultiFrameZstdAgree() throws {
        let expected = try TestPaths.loadFixture("tiny_expected.json", as: [TinyRecord].self)
        for name in ["tiny.jsonl", "tiny.jsonl.zst"] {
            for chunkSize in [1, 7, 1 << 17] {
                let reader = try PileReader(path: TestPaths.fixture(name), setNames: nil, format: nil, chunkSize: chunkSize)
                let documents = try reader.documents()
                XCTAssertEqual(documents.map(\.text), expected.map(\.text), "\(name) chunk \(chunkSize)")
                XCTAssertEqual(documents.map(\.setName), expected.map(\.setName))
                XCTAssertEqual(documents.map(\.line), Array(1...expected.count))
                XCTAssertEqual(documents.map { hex64(fnv1a64($0.text.utf8)) }, expected.map(\.fnv1a64))
            }
        }
    }

    func testZstdSourceWithTinyInputChunks() throws {
        let plain = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("tiny.jsonl")))
        let source = try ZstdByteSource(input: FileByteSource(path: TestPaths.fixture("tiny.jsonl.zst")), inputChunkSize: 3)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 5)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { break }
            output += buffer[0..<n]
        }
        XCTAssertEqual(output, Array(plain))
    }

    func testPlainTextFileIsOneDocument() throws {
        let dir = try TemporaryDirectory()
        let text = "Line one\nline two — ünïcode\n\nlast line without newline"
        let path = try dir.write("doc.txt", text)
        let documents = try PileReader(path: path).documents()
        XCTAssertEqual(documents, [PileDocument(index: 0, line: 1, text: text, setName: nil)])
        XCTAssertEqual(try PileReader(path: path, setNames: ["Github"]).documents(), [])
    }

    func testMalformedJSONNamesFileAndLine() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("bad.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"unterminated}\n{\"text\": \"x\"}\n")
        assertCorpusError(.malformedJSON, line: 3, mentions: ["bad.jsonl:3", "malformed JSON"]) {
            try PileReader(path: path).documents()
        }
        // The stream yields the good record before failing.
        var stream = try PileReader(path: path).makeStream()
        XCTAssertEqual(try stream.next()?.text, "ok")
        assertCorpusError(.malformedJSON, line: 3) { try stream.next() }
    }

    func testMissingAndMistypedFields() throws {
        let dir = try TemporaryDirectory()
        let missing = try dir.write("missing.jsonl", "{\"text\": \"a\"}\n{\"meta\": {\"pile_set_name\": \"Github\"}}\n")
        assertCorpusError(.missingField, line: 2, mentions: ["missing.jsonl:2", "\"text\""]) {
            try PileReader(path: missing).documents()
        }
        let mistyped = try dir.write("mistyped.jsonl", "{\"text\": 42}\n")
        assertCorpusError(.malformedJSON, line: 1, mentions: ["text"]) { try PileReader(path: mistyped).documents() }
        let array = try dir.write("array.jsonl", "[1, 2]\n")
        assertCorpusError(.malformedJSON, line: 1) { try PileReader(path: array).documents() }
    }

    func testInvalidUTF8() throws {
        let dir = try TemporaryDirectory()
        var bytes = Array("{\"text\": \"fine\"}\n{\"text\": \"bad ".utf8)
        bytes += [0xC3, 0x28]  // a lead byte followed by a non-continuation byte
        bytes += Array("\"}\n".utf8)
        let jsonl = try dir.write("bad.jsonl", bytes)
        assertCorpusError(.invalidUTF8, line: 2, mentions: ["bad.jsonl:2", "UTF-8", "offset 14"]) {
            try PileReader(path: jsonl).documents()
        }
        let txt = try dir.write("bad.txt", [0x61, 0x62, 0xFF, 0x63])
        assertCorpusError(.invalidUTF8, mentions: ["bad.txt", "offset 2"]) { try PileReader(path: txt).documents() }
    }

    func testEmptyFiles() throws {
        let dir = try TemporaryDirectory()
        for (name, contents) in [("empty.jsonl", ""), ("blank.jsonl", "\n  \n\r\n"), ("empty.txt", ""), ("empty.jsonl.zst", "")] {
            let path = try dir.write(name, contents)
            assertCorpusError(.emptyFile, mentions: [name]) { try PileReader(path: path).documents() }
        }
    }

    func testTruncatedAndCorruptZstd() throws {
        let dir = try TemporaryDirectory()
        let whole = Array(try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("tiny.jsonl.zst"))))
        for cut in [4, 20, whole.count - 1, whole.count - 6] {
            let path = try dir.write("cut\(cut).jsonl.zst", Array(whole[0..<cut]))
            assertCorpusError(.truncatedCompressedData, mentions: ["cut\(cut).jsonl.zst", "truncated"]) {
                try PileReader(path: path).documents()
            }
        }
        var badMagic = whole
        badMagic[0] ^= 0xFF
        let corrupt = try dir.write("corrupt.jsonl.zst", badMagic)
        assertCorpusError(.corruptCompressedData, mentions: ["corrupt.jsonl.zst", "zstd"]) {
            try PileReader(path: corrupt).documents()
        }
        let notZstd = try dir.write("plain.jsonl.zst", "{\"text\": \"not compressed\"}\n")
        assertCorpusError(.corruptCompressedData) { try PileReader(path: notZstd).documents() }
    }

    func testTruncatedRealShard() throws {
        let source = try TestPaths.sharedFile("data/minipile/val.jsonl.zst")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: source)))
        let dir = try TemporaryDirectory()
        let path = try dir.write("val-half.jsonl.zst", Array(bytes[0..<(bytes.count / 2)]))
        assertCorpusError(.truncatedCompressedData, mentions: ["val-half.jsonl.zst"]) {
            try PileReader(path: path).documents()
        }
    }

    func testUnknownExtensionAndMissingFile() throws {
        assertCorpusError(.io, mentions: ["corpus.parquet", "unknown corpus format"]) {
            try PileReader(path: "/nonexistent/corpus.parquet")
        }
        assertCorpusError(.io, mentions: ["/nonexistent/x.jsonl", "cannot open"]) {
            try PileReader(path: "/nonexistent/x.jsonl").documents()
        }
    }
}
