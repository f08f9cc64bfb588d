import Foundation
import TestSupport
import XCTest

/// `neoxprobe perplexity` end to end beyond EvalCLITests' packed case: per-document JSON against
/// HF transformers (Tests/Fixtures/eval/perplexity.json), the text output of `.bin` rows, and
/// errors that name the flag behind the evaluator's setting.
final class PerplexityCLITests: XCTestCase {
    func testPerDocumentMatchesTransformers() throws {
        try CLI.requireShared()
        let cases = try XCTUnwrap(try CLI.fixture("eval", "perplexity.json")["cases"] as? [[String: Any]])
        let item = try XCTUnwrap(cases.first { $0["mode"] as? String == "per-document" && $0["step"] as? String == "step2000" })
        let documents = try XCTUnwrap(item["documents"] as? [Int])
        let result = try CLI.json(try CLI.run([
            "perplexity", "--model", CLI.model.path, "--data", CLI.validation.path, "--per-document",
            "--rows", "\(documents[0]):\(documents[1])", "--window", String(try XCTUnwrap(item["window"] as? Int)),
            "--stride", String(try XCTUnwrap(item["stride"] as? Int)), "--json",
        ]))
        XCTAssertEqual(result["mode"] as? String, "per-document")
        XCTAssertEqual(result["n"] as? Int, item["tokens"] as? Int)
        assertClose(try XCTUnwrap(result["nll"] as? Double), try XCTUnwrap(item["nll"] as? Double), "nll")
        XCTAssertEqual(result["selection"] as? String, "\(documents[0]):\(documents[1])")
        let got = try XCTUnwrap(result["documents"] as? [[String: Any]])
        let want = try XCTUnwrap(item["per_document"] as? [[String: Any]])
        XCTAssertEqual(got.compactMap { $0["index"] as? Int }, want.compactMap { $0["index"] as? Int })
        for (g, w) in zip(got, want) {
            XCTAssertEqual(g["tokens"] as? Int, w["tokens"] as? Int)
            assertClose(try XCTUnwrap(g["nll"] as? Double), try XCTUnwrap(w["nll"] as? Double), "document nll")
        }
        for key in ["convention", "window", "stride", "model", "tokenizer", "seconds"] { XCTAssertNotNil(result[key], key) }
    }

    /// `.bin` rows, text output: the token budget bounds the work exactly, and the convention is stated.
    func testRowsTextOutput() throws {
        try CLI.requireShared()
        let budget = 64
        let outcome = try CLI.run(["perplexity", "--model", CLI.model.path, "--data", CLI.dataset.path + ".bin",
                                   "--rows", "0:2", "--max-tokens", String(budget)])
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        let lines = outcome.output.split(separator: "\n").map(String.init)
        for label in ["model ", "data ", "convention ", "tokens ", "nll ", "perplexity ", "time "] {
            XCTAssertTrue(lines.contains { $0.hasPrefix(label) }, "no '\(label)' line:\n\(outcome.output)")
        }
        XCTAssertTrue(outcome.output.contains("Pythia training convention"), outcome.output)
        XCTAssertTrue(lines.contains("tokens      \(budget) scored"), outcome.output)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  row 0: \(budget) tokens") }, outcome.output)
    }

    func testErrorsNameTheFlag() throws {
        let directory = try CLI.temporaryDirectory(self)
        let missing = directory.appendingPathComponent("corpus.jsonl").path
        assertFails(try CLI.run(["perplexity", "--model", "m", "--data", missing]), as: .data, mentioning: [missing])
        assertFails(try CLI.run(["perplexity", "--model", "m", "--data", missing, "--limit", "0"]), as: .argument, mentioning: ["--limit"])
        assertFails(try CLI.run(["perplexity", "--model", "m", "--data", missing, "--window", "1"]), as: .argument, mentioning: ["--window"])

        try CLI.requireShared()
        let model = CLI.model.path, text = CLI.validation.path, rows = CLI.dataset.path
        assertFails(try CLI.run(["perplexity", "--model", model, "--data", text, "--window", "1000000"]),
                    as: .data, mentioning: ["--window", "1000000", "max_position_embeddings"])
        assertFails(try CLI.run(["perplexity", "--model", model, "--data", text, "--window", "64", "--stride", "65"]),
                    as: .data, mentioning: ["--stride", "65"])
        assertFails(try CLI.run(["perplexity", "--model", model, "--data", text, "--rows", "100000:"]),
                    as: .data, mentioning: ["--rows", text])
        assertFails(try CLI.run(["perplexity", "--model", model, "--data", rows, "--rows", "0:100000"]),
                    as: .data, mentioning: ["--rows", rows + ".bin"])
        assertFails(try CLI.run(["perplexity", "--model", model, "--data", rows, "--rows", "0:2", "--stride", "8"]),
                    as: .data, mentioning: ["--stride", "text corpora"])
        assertFails(try CLI.run(["perplexity", "--model", model, "--data", text, "--eod=-1"]), as: .data, mentioning: ["--eod", "-1"])
    }
}
