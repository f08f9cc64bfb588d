import Foundation
import TestSupport
import XCTest
@testable import Tokenizers

/// Our Unicode normalizers (Foundation + fixes) against HF `tokenizers`' on the whole BMP.
final class NormalizationTests: XCTestCase {
    private func check(_ form: String, _ normalizer: Normalizer) throws {
        let fixture = try Fixtures.json("normalization.json")
        let suffixes = try XCTUnwrap(fixture["suffixes"] as? [String])
        let blocks = try XCTUnwrap((fixture["block_sha256_16"] as? [String: Any])?[form] as? [String])
        let skipped = Set(try XCTUnwrap((fixture["skipped_code_points"] as? [String: Any])?[form] as? [Int]))
        var differing: [String] = []
        for (index, expected) in blocks.enumerated() {
            var outputs: [String] = []
            for c in max(index * 256, 0x80)..<(index * 256 + 256) {
                guard let scalar = Unicode.Scalar(UInt32(c)), !skipped.contains(c) else { continue }
                for suffix in suffixes { outputs.append(normalizer.apply(String(scalar) + suffix)) }
                outputs.append(normalizer.apply("\u{0301}" + String(scalar)))
            }
            let hash = outputs.isEmpty ? "" : String(SHA256.hex(Array(outputs.joined(separator: "\u{0}").utf8)).prefix(16))
            if hash != expected { differing.append(String(format: "U+%04X", index * 256)) }
        }
        XCTAssertEqual(differing, [], "\(form): 256-code-point blocks whose normalization differs from HF")
    }

    func testNFCMatchesHF() throws { try check("NFC", .nfc) }
    func testNFDMatchesHF() throws { try check("NFD", .nfd) }
    func testNFKCMatchesHF() throws { try check("NFKC", .nfkc) }
    func testNFKDMatchesHF() throws { try check("NFKD", .nfkd) }

    /// Region-wise normalization of a long text equals normalizing it whole.
    func testRegionwiseNormalizationEqualsWhole() throws {
        let cases = try XCTUnwrap(Fixtures.json("stress.json")["cases"] as? [[String: Any]])
        var text = ""
        for entry in cases { text += try Fixtures.text(ofParts: entry["parts"]).prefix(3000) + "x" }
        for form in [Normalizer.nfc, .nfd, .nfkc, .nfkd] {
            var copy = text
            let bytes = copy.withUTF8 { form.normalize($0.baseAddress!, from: 0, to: $0.count) }
            XCTAssertEqual(bytes.map { String(decoding: $0, as: UTF8.self) } ?? text, form.apply(text), "\(form)")
        }
    }

    func testQuickCheckAgreesWithFullNormalization() {
        // The byte-level shortcuts must only claim "unchanged" when that is true.
        for text in ["plain ascii", "caf\u{E9}", "\u{2019}quoted\u{2019}", "a\u{0301}", "\u{AC00}\u{11A8}"] {
            for form in [Normalizer.nfc, .nfd, .nfkc, .nfkd] {
                var copy = text
                let unchanged = copy.withUTF8 { form.leavesUnchanged($0.baseAddress!, from: 0, to: $0.count) }
                if unchanged { XCTAssertEqual(form.apply(text), text, "\(form) on \(text.debugDescription)") }
            }
        }
    }
}
