import Foundation
import XCTest
@testable import Corpus

/// Shape of Tests/Fixtures/corpus/lambada.json (Python's `text.split(' ')`, as lm-eval's lambada_openai).
private struct LambadaFixture: Decodable {
    struct Split: Decodable {
        var index: Int
        var context: String
        var target: String
    }
    struct Synthetic: Decodable {
        var text: String
        var context: String
        var target: String
    }
    var count: Int
    var allFnv1a64: String
    var first: [Split]
    var unusualSpacing: [Split]
    var synthetic: [Synthetic]
}

final class LambadaTests: XCTestCase {
    func testSplitMatchesPythonOnEdgeCases() throws {
        let fixture = try TestPaths.loadFixture("lambada.json", as: LambadaFixture.self)
        XCTAssertFalse(fixture.synthetic.isEmpty)
        for case_ in fixture.synthetic {
            let example = LambadaExample(text: case_.text)
            XCTAssertEqual(example.context, case_.context, "text \(case_.text.debugDescription)")
            XCTAssertEqual(example.target, case_.target, "text \(case_.text.debugDescription)")
            // Byte-exact too (no normalisation of e.g. combining marks).
            XCTAssertEqual(Array(example.context.utf8), Array(case_.context.utf8))
            XCTAssertEqual(Array(example.target.utf8), Array(case_.target.utf8))
        }
    }

    func testTestSetMatchesPython() throws {
        let path = try TestPaths.sharedFile("data/lambada/lambada_test.jsonl")
        let fixture = try TestPaths.loadFixture("lambada.json", as: LambadaFixture.self)
        let examples = try LambadaDataset.load(path: path)
        XCTAssertEqual(examples.count, fixture.count)
        XCTAssertEqual(examples.count, 5153)
        for expected in fixture.first + fixture.unusualSpacing {
            let example = examples[expected.index]
            XCTAssertEqual(example.context, expected.context, "line \(expected.index + 1)")
            XCTAssertEqual(example.target, expected.target, "line \(expected.index + 1)")
            XCTAssertEqual(example.context + example.target, example.text)
        }
        var blob: [UInt8] = []
        for example in examples {
            blob += Array(example.context.utf8) + [0] + Array(example.target.utf8) + [1]
        }
        XCTAssertEqual(hex64(fnv1a64(blob)), fixture.allFnv1a64)
    }

    func testMalformedFiles() throws {
        let dir = try TemporaryDirectory()
        let missing = try dir.write("missing.jsonl", "{\"text\": \"a b\"}\n{\"txt\": \"a b\"}\n")
        assertCorpusError(.missingField, line: 2, mentions: ["missing.jsonl:2", "\"text\""]) {
            try LambadaDataset.load(path: missing)
        }
        let broken = try dir.write("broken.jsonl", "{\"text\": \"a b\"}\n\n{\"text\": \"a b\"\n")
        assertCorpusError(.malformedJSON, line: 3, mentions: ["broken.jsonl:3"]) { try LambadaDataset.load(path: broken) }
        let number = try dir.write("number.jsonl", "{\"text\": 7}\n")
        assertCorpusError(.malformedJSON, line: 1, mentions: ["text"]) { try LambadaDataset.load(path: number) }
        let empty = try dir.write("empty.jsonl", "")
        assertCorpusError(.emptyFile, mentions: ["empty.jsonl"]) { try LambadaDataset.load(path: empty) }
        let blank = try dir.write("blank.jsonl", "\n\n")
        assertCorpusError(.emptyFile) { try LambadaDataset.load(path: blank) }
        // A blank text (no last word) names file and line instead of failing at a token position of -1.
        let blankText = try dir.write("blank-text.jsonl", "{\"text\": \"a b\"}\n{\"text\": \"  \"}\n")
        assertCorpusError(.missingField, line: 2, mentions: ["blank-text.jsonl:2", "blank"]) { try LambadaDataset.load(path: blankText) }
        let badUTF8 = try dir.write("utf8.jsonl", Array("{\"text\": \"a ".utf8) + [0xE2, 0x82] + Array("\"}\n".utf8))
        assertCorpusError(.invalidUTF8, line: 1, mentions: ["utf8.jsonl:1"]) { try LambadaDataset.load(path: badUTF8) }
        assertCorpusError(.io, mentions: ["/nonexistent/lambada.jsonl"]) { try LambadaDataset.load(path: "/nonexistent/lambada.jsonl") }
        // No trailing newline on the last line is fine.
        let noNewline = try dir.write("ok.jsonl", "{\"text\": \"one two\"}\n{\"text\": \"three four\"}")
        XCTAssertEqual(try LambadaDataset.load(path: noNewline).map(\.target), [" two", " four"])
    }
}
