import Formats
import Foundation
import Synchronization
import XCTest
@testable import Tokenizers

/// Round trips, error reporting and configuration handling of ``BPETokenizer``.
final class BPEBehaviourTests: XCTestCase {
    private func tokenizer20B() throws -> BPETokenizer {
        try Fixtures.requireShared()
        return try BPETokenizer(contentsOf: Fixtures.tokenizer20B)
    }

    func testRoundTripOfStressStrings() throws {
        let tok = try tokenizer20B()
        let cases = try XCTUnwrap(Fixtures.json("stress.json")["cases"] as? [[String: Any]])
        for entry in cases {
            let text = try Fixtures.text(ofParts: entry["parts"])
            guard Normalizer.nfc.apply(text) == text else { continue }  // NFC-stable text only
            XCTAssertEqual(try tok.decode(try tok.encode(text)), text, entry["name"] as? String ?? "?")
        }
    }

    func testInvalidUTF8IsAnErrorWithOffset() throws {
        let tok = try tokenizer20B()
        let samples: [([UInt8], Int)] = [
            ([0x61, 0x62, 0xFF], 2), ([0xC0, 0x80], 0), ([0x61, 0xED, 0xA0, 0x80], 1),
            ([0x61, 0xE2, 0x82], 1), ([0xF4, 0x90, 0x80, 0x80], 0), (Array("ok ".utf8) + [0x80], 3),
        ]
        for (bytes, offset) in samples {
            XCTAssertEqual(UTF8Validation.firstInvalidOffset(bytes), offset)
            XCTAssertThrowsError(try tok.encode(utf8: bytes)) { error in
                XCTAssertEqual(error as? TokenizerError, .invalidUTF8(input: "input text", offset: offset))
                XCTAssertTrue("\(error)".contains("byte offset \(offset)"))
            }
        }
        XCTAssertNil(UTF8Validation.firstInvalidOffset(Array("héllo 😀 \u{10FFFF}".utf8)))
    }

    func testDecodeSkipsUnknownIDsLikeHF() throws {
        let tok = try tokenizer20B()
        let ids = try tok.encode("hello")
        XCTAssertEqual(try tok.decode(ids + [Int32(tok.vocabularySize), 60_000, -1]), "hello")
    }

    func testConcurrentEncodingAgrees() throws {
        let tok = try tokenizer20B()
        let text = String(repeating: "Concurrency is not parallelism; it's fine. ", count: 200)
        let expected = try tok.encode(text)
        let results = Mutex<[[Int32]]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let ids = (try? tok.encode(text)) ?? []
            results.withLock { $0.append(ids) }
        }
        XCTAssertEqual(results.withLock { $0 }, Array(repeating: expected, count: 8))
    }

    // MARK: Configuration errors, on small tokenizer.json variants written to a temp dir.

    /// A minimal valid byte-level BPE file: all 256 byte tokens, one merge "h e".
    private func minimalJSON() -> [String: Any] {
        var vocab: [String: Int] = [:]
        for (b, c) in ByteLevel.characters.enumerated() { vocab[String(Character(c))] = b }
        vocab["he"] = 256
        return [
            "version": "1.0",
            "added_tokens": [["id": 257, "content": "<|x|>", "special": true, "single_word": false,
                              "lstrip": false, "rstrip": false, "normalized": false]],
            "normalizer": ["type": "NFC"],
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true],
            "post_processor": ["type": "ByteLevel"],
            "decoder": ["type": "ByteLevel"],
            "model": ["type": "BPE", "vocab": vocab, "merges": [["h", "e"]]],
        ]
    }

    private func load(_ json: [String: Any]) throws -> BPETokenizer {
        let data = try JSONSerialization.data(withJSONObject: json)
        return try BPETokenizer(contentsOf: try Fixtures.temporaryFile(named: "tokenizer.json", contents: data))
    }

    private func assertError(_ json: [String: Any], mentions words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try load(json), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("tokenizer.json"), "message should name the file: \(message)", file: file, line: line)
            for word in words { XCTAssertTrue(message.contains(word), "\(message) should mention \(word)", file: file, line: line) }
        }
    }

    func testMinimalFileWorksWithPairMerges() throws {
        let tok = try load(minimalJSON())
        XCTAssertEqual(try tok.encode("he<|x|>h"), [256, 257, Int32(Character("h").asciiValue!)])
        XCTAssertEqual(try tok.decode([256, 257]), "he<|x|>")
        var stringMerges = minimalJSON()
        var model = stringMerges["model"] as! [String: Any]
        model["merges"] = ["h e"]
        stringMerges["model"] = model
        XCTAssertEqual(try load(stringMerges).encode("hehe"), [256, 256])
    }

    func testAddPrefixSpace() throws {
        var json = minimalJSON()
        json["pre_tokenizer"] = ["type": "ByteLevel", "add_prefix_space": true]
        let tok = try load(json)
        XCTAssertEqual(try tok.encode("h"), [Int32(ByteLevel.characters.firstIndex(of: "Ġ")!), 104])
    }

    func testUnsupportedAndMalformedFiles() throws {
        var json = minimalJSON()
        json["normalizer"] = ["type": "BertNormalizer"]
        assertError(json, mentions: ["normalizer", "BertNormalizer"])

        json = minimalJSON()
        json["pre_tokenizer"] = ["type": "Whitespace"]
        assertError(json, mentions: ["pre_tokenizer", "Whitespace"])

        json = minimalJSON()
        json["decoder"] = ["type": "WordPiece"]
        assertError(json, mentions: ["decoder", "WordPiece"])

        json = minimalJSON()
        json["model"] = ["type": "Unigram", "vocab": []]
        assertError(json, mentions: ["model type", "Unigram"])

        json = minimalJSON()
        var model = json["model"] as! [String: Any]
        model["merges"] = ["h q9"]
        json["model"] = model
        assertError(json, mentions: ["merge 0"])

        json = minimalJSON()
        json.removeValue(forKey: "model")
        assertError(json, mentions: ["model"])

        let broken = try Fixtures.temporaryFile(named: "tokenizer.json", contents: Data("{\"model\": ".utf8))
        XCTAssertThrowsError(try BPETokenizer(contentsOf: broken)) { error in
            XCTAssertTrue("\(error)".contains("invalid JSON"), "\(error)")
            XCTAssertTrue("\(error)".contains(broken.path))
        }
        XCTAssertThrowsError(try BPETokenizer(contentsOf: URL(fileURLWithPath: "/nonexistent/tokenizer.json"))) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/tokenizer.json"))
        }
    }

    /// Hostile ids: fractional (never truncated onto another id), Int32.max (no overflow trap),
    /// 10^9 (no gigabyte decode table) — each a clear error naming the file.
    func testHostileTokenIDsAreRefused() throws {
        for bad in [7.5 as Any, Int(Int32.max) as Any, 1_000_000_000 as Any, -1 as Any, true as Any] {
            var json = minimalJSON()
            var model = json["model"] as! [String: Any]
            var vocab = model["vocab"] as! [String: Any]
            vocab["he"] = bad
            model["vocab"] = vocab
            json["model"] = model
            assertError(json, mentions: ["vocab entry \"he\"", "not an integer"])

            json = minimalJSON()
            json["added_tokens"] = [["id": bad, "content": "<|x|>", "special": true]]
            assertError(json, mentions: ["added token"])
        }
    }

    func testLocate() throws {
        let model = try Fixtures.temporaryFile(named: "tokenizer.json", contents: Data("{}".utf8))
        let directory = model.deletingLastPathComponent()
        XCTAssertEqual(try TokenizerLoader.locate(explicit: nil, modelDirectory: directory).path, model.path)
        XCTAssertEqual(try TokenizerLoader.locate(explicit: model, modelDirectory: nil), model)
        XCTAssertThrowsError(try TokenizerLoader.locate(explicit: directory.appendingPathComponent("missing.json"), modelDirectory: nil))
        let spDirectory = try Fixtures.temporaryFile(named: "weights.bin", contents: Data()).deletingLastPathComponent()
        try FileManager.default.copyItem(at: Fixtures.directory.appendingPathComponent("spm_small.model"),
                                         to: spDirectory.appendingPathComponent("spiece.model"))
        XCTAssertEqual(try TokenizerLoader.locate(explicit: nil, modelDirectory: spDirectory).lastPathComponent, "spiece.model")
        XCTAssertTrue(try TokenizerLoader.load(spDirectory.appendingPathComponent("spiece.model")) is SentencePieceTokenizer)
    }
}
