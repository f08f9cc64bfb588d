import Formats
import Foundation
import TestSupport
import XCTest

/// `neoxprobe run` end to end: the safetensors file it writes, read back, against HF's
/// activations on mini-Pile row 0 (Tests/Fixtures/engine/pythia-mini), and its failures.
final class RunCLITests: XCTestCase {
    static let engineFixtures = RepositoryPaths.fixtures("engine").appendingPathComponent("pythia-mini")

    struct Stats: Decodable {
        var shape: [Int]
        var start: Int
        var stride: Int
        var values: [Double]
    }

    func testCapturedHooksMatchTransformers() throws {
        try CLI.requireShared()
        let expected = try JSONDecoder().decode([String: Stats].self,
                                                from: Data(contentsOf: Self.engineFixtures.appendingPathComponent("step2000.json")))
        let out = try CLI.temporaryDirectory(self).appendingPathComponent("acts.safetensors")
        let outcome = try CLI.run(["run", "--model", CLI.model.path,
                                   "--tokens", "@" + Self.engineFixtures.appendingPathComponent("row0_tokens.txt").path,
                                   "--hooks", "blocks.*.hook_resid_post, ln_final.hook_normalized", "--out", out.path])
        XCTAssertEqual(outcome.status, 0, outcome.standardError)

        let wanted = expected.keys.filter { $0.hasSuffix(".hook_resid_post") || $0 == "ln_final.hook_normalized" }
        let tensors = try SafeTensors.read(out)
        XCTAssertEqual(Set(tensors.keys), Set(wanted))
        for name in wanted {
            let stats = try XCTUnwrap(expected[name]), entry = try XCTUnwrap(tensors[name], name)
            XCTAssertEqual(entry.dtype, .f32, name)
            XCTAssertEqual(entry.shape, stats.shape, name)
            let values = try entry.float32()
            for (i, reference) in stats.values.enumerated() {
                let value = Double(values[stats.start + i * stats.stride])
                XCTAssertLessThanOrEqual(abs(value - reference) / (1 + abs(reference)), 1e-4, "\(name) sample \(i)")
            }
            XCTAssertTrue(outcome.output.contains("\(name) \(stats.shape)"), "run should list \(name) as written:\n\(outcome.output)")
        }
    }

    /// --text: tokenized with the shared tokenizer, one sequence of as many tokens as HF's encoding.
    func testTextInputIsTokenizedAsOneSequence() throws {
        try CLI.requireShared()
        let stress = try XCTUnwrap(try CLI.fixture("tokenizer", "stress.json")["cases"] as? [[String: Any]])
        let plain = try XCTUnwrap(stress.first { $0["name"] as? String == "plain" })
        let parts = try XCTUnwrap(plain["parts"] as? [[Any]])
        let text = parts.map { String(repeating: $0[0] as! String, count: $0[1] as! Int) }.joined()
        let ids = try XCTUnwrap(plain["ids"] as? [Int])
        let directory = try CLI.temporaryDirectory(self)
        let input = directory.appendingPathComponent("input.txt"), out = directory.appendingPathComponent("acts.safetensors")
        try Data(text.utf8).write(to: input)
        let outcome = try CLI.run(["run", "--model", CLI.model.path, "--text", input.path, "--tokenizer", CLI.tokenizer.path,
                                   "--hooks", "blocks.0.hook_resid_pre", "--out", out.path])
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        let entry = try XCTUnwrap(try SafeTensors.read(out)["blocks.0.hook_resid_pre"])
        XCTAssertEqual(Array(entry.shape.prefix(2)), [1, ids.count])
    }

    /// A mistyped pattern is refused by name instead of being dropped, and nothing is written.
    func testMistypedHookPatternIsRefused() throws {
        try CLI.requireShared()
        let out = try CLI.temporaryDirectory(self).appendingPathComponent("acts.safetensors")
        let outcome = try CLI.run(["run", "--model", CLI.model.path, "--tokens", "1 2 3",
                                   "--hooks", "blocks.*.hook_resid_post,blocks.*.hook_atn_out", "--out", out.path])
        XCTAssertNotEqual(outcome.status, 0)
        assertFails(outcome, as: .data, mentioning: ["blocks.*.hook_atn_out", "--hooks"])
        XCTAssertFalse(outcome.standardError.contains("'blocks.*.hook_resid_post'"), "only the bad pattern is named: \(outcome.standardError)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    func testBadInputsNameTheFile() throws {
        let directory = try CLI.temporaryDirectory(self)
        let out = directory.appendingPathComponent("acts.safetensors").path
        let missingModel = directory.appendingPathComponent("no-such-model").path
        assertFails(try CLI.run(["run", "--model", missingModel, "--tokens", "1 2", "--hooks", "*", "--out", out]),
                    as: .data, mentioning: [missingModel])

        try CLI.requireShared()
        let missingTokens = directory.appendingPathComponent("ids.txt").path
        assertFails(try CLI.run(["run", "--model", CLI.model.path, "--tokens", "@" + missingTokens, "--hooks", "*", "--out", out]),
                    as: .data, mentioning: [missingTokens])
        let ragged = directory.appendingPathComponent("ragged.txt")
        try Data("1 2 3\n4 5\n".utf8).write(to: ragged)
        assertFails(try CLI.run(["run", "--model", CLI.model.path, "--tokens", "@" + ragged.path, "--hooks", "*", "--out", out]),
                    as: .data, mentioning: [ragged.path, "line 2"])
        assertFails(try CLI.run(["run", "--model", CLI.model.path, "--tokens", "1 x 3", "--hooks", "*", "--out", out]),
                    as: .data, mentioning: ["'x'"])
        // Ids beyond the vocabulary are the engine's to refuse (NeoXError), still without usage.
        assertFails(try CLI.run(["run", "--model", CLI.model.path, "--tokens", "1 99999999", "--hooks", "logits", "--out", out]),
                    as: .data, mentioning: ["99999999"])
    }

    func testArgumentErrors() throws {
        let out = try CLI.temporaryDirectory(self).appendingPathComponent("acts.safetensors").path
        assertFails(try CLI.run(["run", "--model", "m", "--hooks", "*", "--out", out]), as: .argument, mentioning: ["--tokens", "--text"])
        assertFails(try CLI.run(["run", "--model", "m", "--tokens", "1", "--hooks", " , ", "--out", out]), as: .argument, mentioning: ["--hooks"])
        assertFails(try CLI.run(["run", "--model", "m", "--tokens", "1", "--hooks", "*", "--out", out, "--gelu", "relu"]),
                    as: .argument, mentioning: ["--gelu", "relu"])
        assertFails(try CLI.run(["run", "--model", "m", "--tokens", "1", "--hooks", "*", "--out", out, "--repeats", "9223372036854775807"]),
                    as: .argument, mentioning: ["--repeats"])
    }
}
