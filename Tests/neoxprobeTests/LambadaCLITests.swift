import Foundation
import TestSupport
import XCTest

/// `neoxprobe lambada` per example against HF transformers under the harness's formulas
/// (Tests/Fixtures/eval/lambada.json); EvalCLITests checks the aggregates against lm_eval itself.
final class LambadaCLITests: XCTestCase {
    func testPerExampleScoresMatchTransformers() throws {
        try CLI.requireShared()
        let steps = try XCTUnwrap(try CLI.fixture("eval", "lambada.json")["steps"] as? [String: [String: Any]])
        let expected = try XCTUnwrap(steps["step2000"])
        let ll = try XCTUnwrap(expected["ll"] as? [Double]), greedy = try XCTUnwrap(expected["greedy"] as? [Int])
        let limit = 3
        let result = try CLI.json(try CLI.run(["lambada", "--model", CLI.model.path, "--data", CLI.lambada.path,
                                               "--limit", String(limit), "--per-example", "--json"]))
        XCTAssertEqual(result["n"] as? Int, limit)
        let examples = try XCTUnwrap(result["examples"] as? [[String: Any]])
        XCTAssertEqual(examples.compactMap { $0["index"] as? Int }, Array(0..<limit))
        for (i, example) in examples.enumerated() {
            assertClose(try XCTUnwrap(example["loglikelihood"] as? Double), ll[i], "example \(i) log-likelihood")
            XCTAssertEqual(example["greedy"] as? Bool, greedy[i] != 0, "example \(i) greedy")
        }

        let text = try CLI.run(["lambada", "--model", CLI.model.path, "--data", CLI.lambada.path, "--limit", String(limit)])
        XCTAssertEqual(text.status, 0, text.standardError)
        for label in ["model ", "tokenizer ", "data ", "method ", "acc ", "perplexity ", "time "] {
            XCTAssertTrue(text.output.split(separator: "\n").contains { $0.hasPrefix(label) }, "no '\(label)' line:\n\(text.output)")
        }
    }

    func testBadInputs() throws {
        let directory = try CLI.temporaryDirectory(self)
        let missing = directory.appendingPathComponent("lambada.jsonl").path
        assertFails(try CLI.run(["lambada", "--model", "m", "--data", missing]), as: .data, mentioning: [missing])
        assertFails(try CLI.run(["lambada", "--model", "m", "--data", missing, "--limit", "0"]), as: .argument, mentioning: ["--limit"])
        assertFails(try CLI.run(["lambada", "--model", "m", "--limit", "99999999999999999999"]), as: .argument, mentioning: ["--limit"])

        try CLI.requireShared()
        let malformed = directory.appendingPathComponent("bad.jsonl")
        try Data("{\"text\": \"fine line\"}\nnot json\n".utf8).write(to: malformed)
        assertFails(try CLI.run(["lambada", "--model", CLI.model.path, "--data", malformed.path]),
                    as: .data, mentioning: [malformed.path])
    }
}
