import Formats
import Foundation
import TestSupport
import XCTest

/// `neoxprobe generate` end to end: greedy continuations of unequal-length prompts in one batch
/// against HF generate (Tests/Fixtures/generation/pythia-mini-step2000.json), text output,
/// activations of the generated positions, reproducible sampling, and its argument errors.
final class GenerateCLITests: XCTestCase {
    struct Record: Decodable {
        struct Sequence: Decodable { var prompt: [Int]; var tokens: [Int] }
        var max_new_tokens: Int
        var sequences: [Sequence]
    }

    func testBatchedGreedyMatchesTransformers() throws {
        try CLI.requireShared()
        let url = RepositoryPaths.fixtures("generation").appendingPathComponent("pythia-mini-step2000.json")
        let record = try JSONDecoder().decode(Record.self, from: Data(contentsOf: url))
        let file = try CLI.temporaryDirectory(self).appendingPathComponent("prompts.txt")
        try record.sequences.map { $0.prompt.map(String.init).joined(separator: " ") }.joined(separator: "\n")
            .write(to: file, atomically: true, encoding: .utf8)
        let object = try CLI.json(CLI.run(["generate", "--model", CLI.model.path, "--tokens", "@" + file.path,
                                           "--max-new-tokens", String(record.max_new_tokens), "--greedy", "--json"]))
        let sequences = try XCTUnwrap(object["sequences"] as? [[String: Any]])
        XCTAssertEqual(sequences.count, record.sequences.count)
        for (ours, expected) in zip(sequences, record.sequences) {
            XCTAssertEqual(ours["prompt_tokens"] as? [Int], expected.prompt)
            XCTAssertEqual(ours["tokens"] as? [Int], expected.tokens)
            XCTAssertEqual((ours["logprobs"] as? [Double])?.count, expected.tokens.count)
        }
        let model = try XCTUnwrap(object["model"] as? [String: Any])
        XCTAssertEqual(model["path"] as? String, CLI.model.path)
        XCTAssertEqual(object["model_spec"] as? String, CLI.model.path)
    }

    func testPromptTextAndActivationsOfGeneratedPositions() throws {
        try CLI.requireShared()
        let out = try CLI.temporaryDirectory(self).appendingPathComponent("acts.safetensors")
        let outcome = try CLI.run(["generate", "--model", CLI.model.path, "--prompt", "def main():", "--max-new-tokens", "6",
                                   "--ignore-eos", "--hooks", "blocks.1.hook_resid_post", "--out", out.path, "--json"])
        let object = try CLI.json(outcome)
        let sequence = try XCTUnwrap((object["sequences"] as? [[String: Any]])?.first)
        let prompt = try XCTUnwrap(sequence["prompt_tokens"] as? [Int]), tokens = try XCTUnwrap(sequence["tokens"] as? [Int])
        XCTAssertEqual(tokens.count, 6)
        XCTAssertNotNil(sequence["text"] as? String)
        let entry = try XCTUnwrap(try SafeTensors.read(out)["seq0.blocks.1.hook_resid_post"])
        XCTAssertEqual(entry.shape, [1, prompt.count + tokens.count, 64])

        let plain = try CLI.run(["generate", "--model", CLI.model.path, "--prompt", "def main():", "--max-new-tokens", "6", "--ignore-eos"])
        XCTAssertEqual(plain.status, 0, plain.standardError)
        XCTAssertEqual(plain.output, (sequence["text"] as! String) + "\n")
    }

    /// --stop ends a sequence once its decoded continuation contains the string (the token completing it included).
    func testStopStringEndsTheSequence() throws {
        try CLI.requireShared()
        let arguments = ["generate", "--model", CLI.model.path, "--prompt", "def main():", "--max-new-tokens", "12", "--ignore-eos", "--json"]
        let full = try XCTUnwrap((try CLI.json(CLI.run(arguments))["sequences"] as? [[String: Any]])?.first)
        let text = try XCTUnwrap(full["text"] as? String), tokens = try XCTUnwrap(full["tokens"] as? [Int])
        XCTAssertEqual(tokens.count, 12)
        let stop = String(text.prefix(3))
        guard !stop.isEmpty else { throw XCTSkip("the greedy continuation decodes to no text") }
        let stopped = try XCTUnwrap((try CLI.json(CLI.run(arguments + ["--stop", stop]))["sequences"] as? [[String: Any]])?.first)
        XCTAssertEqual(stopped["stop_reason"] as? String, "stop")
        let kept = try XCTUnwrap(stopped["tokens"] as? [Int])
        XCTAssertLessThan(kept.count, 12)
        XCTAssertEqual(kept, Array(tokens.prefix(kept.count)))
        XCTAssertTrue((stopped["text"] as? String ?? "").contains(stop))
    }

    func testSamplingIsReproducibleFromTheSeed() throws {
        try CLI.requireShared()
        let arguments = ["generate", "--model", CLI.model.path, "--tokens", "510 3158 8516\n187", "--max-new-tokens", "8",
                         "--temperature", "0.8", "--top-k", "50", "--top-p", "0.95", "--json"]
        let first = try XCTUnwrap(try CLI.json(CLI.run(arguments + ["--seed", "11"]))["sequences"] as? [[String: Any]])
        let again = try XCTUnwrap(try CLI.json(CLI.run(arguments + ["--seed", "11"]))["sequences"] as? [[String: Any]])
        XCTAssertEqual(first.map { $0["tokens"] as! [Int] }, again.map { $0["tokens"] as! [Int] })
    }

    func testArgumentErrors() throws {
        _ = try CommandRunner.executable()
        let model = CLI.model.path
        assertFails(try CLI.run(["generate", "--model", model, "--max-new-tokens", "4"]), as: .argument, mentioning: ["--prompt"])
        assertFails(try CLI.run(["generate", "--model", model, "--prompt", "x", "--max-new-tokens", "4", "--greedy", "--temperature", "1"]),
                    as: .argument, mentioning: ["--greedy"])
        assertFails(try CLI.run(["generate", "--model", model, "--prompt", "x", "--max-new-tokens", "-1"]), as: .argument, mentioning: ["--max-new-tokens"])
        assertFails(try CLI.run(["generate", "--model", model, "--prompt", "x", "--max-new-tokens", "2", "--top-p", "0"]),
                    as: .argument, mentioning: ["--top-p"])
        assertFails(try CLI.run(["generate", "--model", model, "--prompt", "x", "--max-new-tokens", "2", "--hooks", "*"]),
                    as: .argument, mentioning: ["--out"])
        let help = try CLI.run(["generate", "--help"])
        XCTAssertEqual(help.status, 0)
        for flag in ["--model", "--prompt", "--text", "--tokens", "--max-new-tokens", "--greedy", "--temperature", "--top-k",
                     "--top-p", "--seed", "--stop", "--hooks", "--out", "--json"] {
            XCTAssertTrue(help.output.contains(flag), "generate --help does not mention \(flag)")
        }
    }

    /// The generation probes' sweep options are checked and reported by flag.
    func testSweepGenerationProbeOptionsNameTheirFlags() throws {
        try CLI.requireShared()
        let out = try CLI.temporaryDirectory(self).appendingPathComponent("results").path
        assertFails(try CLI.run(["sweep", "--suite", CLI.suite.path, "--probes", "memorization", "--out", out]),
                    as: .data, mentioning: ["--data", "memorization"])
        assertFails(try CLI.run(["sweep", "--suite", CLI.suite.path, "--probes", "lambada_generation", "--unmask-steps", "0",
                                 "--lambada-data", CLI.lambada.path, "--out", out]),
                    as: .data, mentioning: ["--unmask-steps"])
    }
}
