import Foundation
import TestSupport
import XCTest

/// `neoxprobe tokenize` end to end against HF tokenizers' ids (Tests/Fixtures/tokenizer/stress.json).
final class TokenizeCLITests: XCTestCase {
    func testEncodesAsHFAndDecodesBack() throws {
        try CLI.requireShared()
        let cases = try XCTUnwrap(try CLI.fixture("tokenizer", "stress.json")["cases"] as? [[String: Any]])
        let directory = try CLI.temporaryDirectory(self)
        for name in ["plain", "crlf", "whitespace_runs", "leading_trailing_spaces"] {
            let item = try XCTUnwrap(cases.first { $0["name"] as? String == name }, name)
            let parts = try XCTUnwrap(item["parts"] as? [[Any]])
            let text = parts.map { String(repeating: $0[0] as! String, count: $0[1] as! Int) }.joined()
            let expected = try XCTUnwrap(item["ids"] as? [Int])
            let input = directory.appendingPathComponent("\(name).txt")
            try Data(text.utf8).write(to: input)

            let encoded = try CLI.run(["tokenize", "--tokenizer", CLI.tokenizer.path, input.path])
            XCTAssertEqual(encoded.status, 0, encoded.standardError)
            XCTAssertEqual(encoded.output, expected.map(String.init).joined(separator: " ") + "\n", name)

            let ids = directory.appendingPathComponent("\(name).ids")
            try encoded.standardOutput.write(to: ids)
            let decoded = try CLI.run(["tokenize", "--tokenizer", CLI.tokenizer.path, "--decode", ids.path])
            XCTAssertEqual(decoded.status, 0, decoded.standardError)
            XCTAssertEqual(decoded.output, text, "\(name): decode(encode(text)) must give the text back")
        }
    }

    func testBadInputsNameTheFile() throws {
        let directory = try CLI.temporaryDirectory(self)
        let missingTokenizer = directory.appendingPathComponent("tokenizer.json").path
        assertFails(try CLI.run(["tokenize", "--tokenizer", missingTokenizer, "README.md"]), as: .data, mentioning: [missingTokenizer])

        try CLI.requireShared()
        let missingInput = directory.appendingPathComponent("missing.txt").path
        assertFails(try CLI.run(["tokenize", "--tokenizer", CLI.tokenizer.path, missingInput]), as: .data, mentioning: [missingInput])
        let notIDs = directory.appendingPathComponent("words.txt")
        try Data("12 abc 7".utf8).write(to: notIDs)
        assertFails(try CLI.run(["tokenize", "--tokenizer", CLI.tokenizer.path, "--decode", notIDs.path]),
                    as: .data, mentioning: [notIDs.path, "abc"])
        let huge = directory.appendingPathComponent("huge.txt")
        try Data("12 99999999999 7".utf8).write(to: huge)
        assertFails(try CLI.run(["tokenize", "--tokenizer", CLI.tokenizer.path, "--decode", huge.path]),
                    as: .data, mentioning: [huge.path, "99999999999"])
        let outside = directory.appendingPathComponent("outside.txt")
        try Data("12 99999999 7".utf8).write(to: outside)
        assertFails(try CLI.run(["tokenize", "--tokenizer", CLI.tokenizer.path, "--decode", outside.path]),
                    as: .data, mentioning: [outside.path, "99999999", "vocabulary"])
        let binary = directory.appendingPathComponent("binary.txt")
        try Data([0x61, 0x62, 0xFF, 0x63]).write(to: binary)
        assertFails(try CLI.run(["tokenize", "--tokenizer", CLI.tokenizer.path, binary.path]),
                    as: .data, mentioning: [binary.path, "UTF-8", "offset 2"])
    }
}
