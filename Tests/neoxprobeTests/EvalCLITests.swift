import Foundation
import TestSupport
import XCTest

/// `neoxprobe lambada` and `neoxprobe perplexity` end to end: the built binary's `--json` output
/// against lm-evaluation-harness's own numbers and HF transformers' (Tests/Fixtures/eval).
final class EvalCLITests: XCTestCase {
    private func runJSON(_ arguments: [String]) throws -> [String: Any] {
        let outcome = try CommandRunner.run(arguments)
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: outcome.standardOutput) as? [String: Any], "not a JSON object")
    }

    private func expectedEval(_ name: String) throws -> [String: Any] {
        let url = RepositoryPaths.root.appendingPathComponent("Tests/Fixtures/eval/\(name)")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    func testLambadaCommandMatchesLMEvaluationHarness() throws {
        let model = ProbeFixtures.pythiaMini.appendingPathComponent("step2000")
        guard FileManager.default.fileExists(atPath: model.path) else { throw XCTSkip("../shared not present") }
        let harness = try XCTUnwrap(try expectedEval("lambada.json")["lm_eval"] as? [String: Any])
        let limit = try XCTUnwrap(harness["limit"] as? Int)
        let result = try runJSON(["lambada", "--model", model.path, "--limit", String(limit), "--json",
                                  "--data", ProbeFixtures.shared.appendingPathComponent("data/lambada/lambada_test.jsonl").path])
        XCTAssertEqual(result["n"] as? Int, limit)
        XCTAssertEqual(try XCTUnwrap(result["acc"] as? Double), try XCTUnwrap(harness["acc"] as? Double))
        let perplexity = try XCTUnwrap(result["perplexity"] as? Double)
        let expected = try XCTUnwrap(harness["perplexity"] as? Double)
        XCTAssertLessThan(abs(perplexity / expected - 1), 1e-4, "neoxprobe \(perplexity) vs lm_eval \(expected)")
        let provenance = try XCTUnwrap(result["model"] as? [String: Any])
        XCTAssertNotNil(provenance["config"] as? [String: Any], "the JSON must carry the model's config")
        XCTAssertNotNil(result["tokenizer"] as? String)
    }

    func testPerplexityCommandMatchesTransformersOnPackedText() throws {
        let cases = try XCTUnwrap(try expectedEval("perplexity.json")["cases"] as? [[String: Any]])
        let packed = try XCTUnwrap(cases.first { $0["mode"] as? String == "packed" })
        let step = try XCTUnwrap(packed["step"] as? String)
        let documents = try XCTUnwrap(packed["documents"] as? [Int])
        let model = ProbeFixtures.pythiaMini.appendingPathComponent(step)
        guard FileManager.default.fileExists(atPath: model.path) else { throw XCTSkip("../shared not present") }
        let data = ProbeFixtures.shared.appendingPathComponent("data/minipile/\(try XCTUnwrap(packed["data"] as? String))")
        let result = try runJSON(["perplexity", "--model", model.path, "--data", data.path,
                                  "--rows", "\(documents[0]):\(documents[1])",
                                  "--window", String(try XCTUnwrap(packed["window"] as? Int)),
                                  "--stride", String(try XCTUnwrap(packed["stride"] as? Int)), "--json"])
        XCTAssertEqual(result["n"] as? Int, packed["tokens"] as? Int)
        let nll = try XCTUnwrap(result["nll"] as? Double), expected = try XCTUnwrap(packed["nll"] as? Double)
        XCTAssertLessThan(abs(nll / expected - 1), 1e-4, "nll \(nll) vs transformers \(expected)")
        XCTAssertNotNil(result["convention"] as? String, "the JSON must state the window/stride convention")
    }
}
