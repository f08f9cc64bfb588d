import Foundation
import XCTest
@testable import Tokenizers

/// The SentencePiece backend against the `sentencepiece` PyPI package, on a small model trained
/// by Tests/Fixtures/generate_tokenizer.py.
final class SentencePieceTests: XCTestCase {
    private let modelURL = Fixtures.directory.appendingPathComponent("spm_small.model")

    func testLoaderPicksSentencePieceByExtension() throws {
        let tok = try TokenizerLoader.load(modelURL)
        XCTAssertTrue(tok is SentencePieceTokenizer)
        XCTAssertEqual(tok.vocabularySize, try Fixtures.json("spm_small.json")["vocabulary_size"] as? Int)
        XCTAssertEqual(tok.name, modelURL.path)
    }

    func testStressStringsMatchPython() throws {
        let tok = try SentencePieceTokenizer(contentsOf: modelURL)
        let cases = try XCTUnwrap(Fixtures.json("spm_small.json")["cases"] as? [[String: Any]])
        XCTAssertGreaterThan(cases.count, 30)
        for entry in cases {
            let name = entry["name"] as? String ?? "?"
            let text = try Fixtures.text(ofParts: entry["parts"])
            let expected = try Fixtures.ids(entry["ids"])
            XCTAssertEqual(try tok.encode(text), expected, name)
            XCTAssertEqual(try tok.encode(utf8: Array(text.utf8)), expected, name)
            XCTAssertEqual(try tok.decode(expected), entry["decoded"] as? String ?? text, name)
        }
    }

    func testLambadaLinesMatchPython() throws {
        try Fixtures.requireShared()
        let tok = try SentencePieceTokenizer(contentsOf: modelURL)
        let lines = try XCTUnwrap(Fixtures.json("spm_small.json")["lambada"] as? [[String: Any]])
        let texts = try Fixtures.jsonlTexts(Fixtures.shared.appendingPathComponent("data/lambada/lambada_test.jsonl"))
        var differences = 0
        for entry in lines {
            let index = try XCTUnwrap(entry["lambada_index"] as? Int)
            let ids = try tok.encode(texts[index])
            if ids != (try Fixtures.ids(entry["ids"])) { differences += 1 }
            if entry["decode_equals_text"] as? Bool == true { XCTAssertEqual(try tok.decode(ids), texts[index]) }
        }
        XCTAssertEqual(differences, 0, "LAMBADA lines whose ids differ from python sentencepiece")
    }

    func testErrors() throws {
        let tok = try SentencePieceTokenizer(contentsOf: modelURL)
        XCTAssertThrowsError(try tok.encode(utf8: [0x61, 0xC3])) { error in
            XCTAssertEqual(error as? TokenizerError, .invalidUTF8(input: "input text", offset: 1))
        }
        XCTAssertThrowsError(try tok.decode([Int32(tok.vocabularySize)]))
        let garbage = try Fixtures.temporaryFile(named: "bad.model", contents: Data("not a model".utf8))
        XCTAssertThrowsError(try SentencePieceTokenizer(contentsOf: garbage)) { error in
            guard case .sentencePiece(let path, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, garbage.path)
        }
        XCTAssertEqual(try tok.encode(""), [])
    }
}
