import Formats
import Foundation
import TestSupport
import XCTest

/// Text that is line-oriented is accepted with CRLF line ends as with LF (Swift reads "\r\n" as
/// one Character, so splitting on "\n" alone used to reject `4\r\n5`).
final class LineEndingTests: XCTestCase {
    func testTokenFilesAndDecodeAcceptCRLF() throws {
        try CLI.requireShared()
        let directory = try CLI.temporaryDirectory(self)
        let lf = directory.appendingPathComponent("lf.txt"), crlf = directory.appendingPathComponent("crlf.txt")
        try Data("510 3158 8516\n30013 27287 689\n".utf8).write(to: lf)
        try Data("510 3158 8516\r\n30013 27287 689\r\n".utf8).write(to: crlf)
        var captures: [[Float]] = []
        for (name, file) in [("lf", lf), ("crlf", crlf)] {
            let out = directory.appendingPathComponent("\(name).safetensors")
            let outcome = try CLI.run(["run", "--model", CLI.model.path, "--tokens", "@" + file.path,
                                       "--hooks", "blocks.0.hook_resid_post", "--out", out.path])
            XCTAssertEqual(outcome.status, 0, outcome.standardError)
            let tensor = try XCTUnwrap(try SafeTensors.read(out)["blocks.0.hook_resid_post"])
            XCTAssertEqual(tensor.shape, [2, 3, 64])
            captures.append(try tensor.float32())
        }
        XCTAssertEqual(captures[0], captures[1], "CRLF and LF token files are the same batch")

        let decodedLF = try CLI.run(["tokenize", "--tokenizer", CLI.tokenizer.path, "--decode", lf.path])
        let decodedCRLF = try CLI.run(["tokenize", "--tokenizer", CLI.tokenizer.path, "--decode", crlf.path])
        XCTAssertEqual(decodedCRLF.status, 0, decodedCRLF.standardError)
        XCTAssertEqual(decodedCRLF.output, decodedLF.output)
    }
}
