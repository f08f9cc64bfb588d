import Foundation
import TestSupport
import XCTest
@testable import Tokenizers

/// Token-for-token parity of ``BPETokenizer`` with HF `tokenizers` on the GPT-NeoX-20B tokenizer.
final class BPEParityTests: XCTestCase {
    /// Loaded once: parsing the 2 MB JSON is the slowest part of set-up.
    nonisolated(unsafe) private static var cached: BPETokenizer?

    private func tokenizer() throws -> BPETokenizer {
        try Fixtures.requireShared()
        if let cached = Self.cached { return cached }
        let loaded = try BPETokenizer(contentsOf: Fixtures.tokenizer20B)
        Self.cached = loaded
        return loaded
    }

    func testVocabularySizeMatchesHF() throws {
        let fixture = try Fixtures.json("stress.json")
        let vocabularySize = try tokenizer().vocabularySize   // outside the assertion, so a missing ../shared skips
        XCTAssertEqual(vocabularySize, fixture["vocabulary_size"] as? Int)
    }

    func testStressStrings() throws {
        let tok = try tokenizer()
        let cases = try XCTUnwrap(Fixtures.json("stress.json")["cases"] as? [[String: Any]])
        XCTAssertGreaterThan(cases.count, 40)
        var failures: [String] = []
        for entry in cases {
            let name = entry["name"] as? String ?? "?"
            let text = try Fixtures.text(ofParts: entry["parts"])
            let ids = try tok.encode(text)
            if let expected = entry["ids"] {
                let expectedIDs = try Fixtures.ids(expected)
                if ids != expectedIDs {
                    let firstDiff = zip(ids, expectedIDs).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    failures.append("\(name): got \(ids.count) ids, expected \(expectedIDs.count); first difference at \(firstDiff.map(String.init) ?? "end")")
                }
            } else {
                let count = try XCTUnwrap(entry["ids_count"] as? Int)
                let head = try Fixtures.ids(entry["ids_head"])
                if ids.count != count || Array(ids.prefix(head.count)) != head
                    || SHA256.hex(ids: ids) != entry["ids_sha256"] as? String {
                    failures.append("\(name): got \(ids.count) ids (hash mismatch), expected \(count)")
                }
            }
            // Same result through the byte API.
            XCTAssertEqual(try tok.encode(utf8: Array(text.utf8)), ids, name)
            let decoded = try tok.decode(ids)
            let expectedDecode = entry["decoded"] as? String ?? text
            if decoded != expectedDecode { failures.append("\(name): decode differs from HF") }
        }
        XCTAssertEqual(failures, [], "differences from HF tokenizers")
    }

    func testMinipileTrain() throws { try corpus("corpus_minipile_train.json") }
    func testMinipileValidation() throws { try corpus("corpus_minipile_val.json") }
    func testLambadaTest() throws { try corpus("corpus_lambada_test.json") }

    /// Every document/line of a real corpus: id count and hash must equal HF's, and decode must
    /// give back the text (or HF's decode where that differs).
    private func corpus(_ fixtureName: String) throws {
        let tok = try tokenizer()
        let fixture = try Fixtures.json(fixtureName)
        let source = try XCTUnwrap(fixture["source"] as? String)
        let texts = try Fixtures.jsonlTexts(Fixtures.shared.appendingPathComponent(source))
        XCTAssertEqual(SHA256.hex(Array(texts.joined(separator: "\n").utf8)), fixture["texts_sha256"] as? String,
                       "\(source) is not the file the fixture was generated from")
        let documents = try XCTUnwrap(fixture["documents"] as? [[Any]])
        XCTAssertEqual(documents.count, texts.count)
        var decodeDiffers: [Int: String] = [:]
        for pair in fixture["decode_differs"] as? [[Any]] ?? [] {
            decodeDiffers[try XCTUnwrap(pair[0] as? Int)] = try XCTUnwrap(pair[1] as? String)
        }
        var full: [Int: [Int32]] = [:]
        for entry in fixture["full"] as? [[String: Any]] ?? [] {
            full[try XCTUnwrap(entry["index"] as? Int)] = try Fixtures.ids(entry["ids"])
        }
        var mismatches: [Int] = []
        var decodeMismatches: [Int] = []
        for (index, text) in texts.enumerated() {
            let ids = try tok.encode(utf8: Array(text.utf8))
            let expectedCount = documents[index][0] as? Int
            let expectedHash = documents[index][1] as? String
            if ids.count != expectedCount || !SHA256.hex(ids: ids).hasPrefix(expectedHash ?? "-") {
                mismatches.append(index)
            }
            if let expected = full[index] { XCTAssertEqual(ids, expected, "\(source) document \(index)") }
            let decoded = try tok.decode(ids)
            if let hash = decodeDiffers[index] {
                if !SHA256.hex(Array(decoded.utf8)).hasPrefix(hash) { decodeMismatches.append(index) }
            } else if decoded != text {
                decodeMismatches.append(index)
            }
        }
        XCTAssertEqual(mismatches, [], "\(source): documents whose ids differ from HF tokenizers")
        XCTAssertEqual(decodeMismatches, [], "\(source): documents whose decode differs from HF")
        print("[tokenizer parity] \(source): \(texts.count) documents compared, \(mismatches.count) id differences, \(decodeMismatches.count) decode differences")
    }
}
