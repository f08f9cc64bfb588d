import Formats
import Foundation
import TestSupport
import XCTest

/// `neoxprobe run --ablate/--patch/--add` end to end, against the logits of HF forwards edited by
/// PyTorch hooks (Tests/Fixtures/generate_hooks.py), and the metadata `run` writes.
final class InterventionCLITests: XCTestCase {
    static let model = RepositoryPaths.fixtures("engine").appendingPathComponent("parallel_erf_r025")
    static let fixtures = RepositoryPaths.fixtures("hooks").appendingPathComponent("interventions")

    func reference() throws -> [String: [Float]] {
        try SafeTensors.read(Self.fixtures.appendingPathComponent("parallel_erf_r025.safetensors")).mapValues { try $0.float32() }
    }

    /// Runs `run` with `extra` and returns the logits it wrote.
    func logits(_ extra: [String], in directory: URL, json: Bool = false) throws -> (logits: [Float], outcome: CommandRunner.Outcome) {
        let out = directory.appendingPathComponent("edited-\(UUID().uuidString).safetensors")
        let tokens = Self.model.appendingPathComponent("tokens.txt").path
        let outcome = try CLI.run(["run", "--model", Self.model.path, "--tokens", "@" + tokens, "--hooks", "logits", "--out", out.path]
                                  + extra + (json ? ["--json"] : []))
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        return (try SafeTensors.read(out)["logits"]!.float32(), outcome)
    }

    /// The header's `__metadata__` (read by hand: the library reads tensors, not metadata).
    static func metadata(_ url: URL) throws -> [String: String] {
        let data = try Data(contentsOf: url)
        let length = data.prefix(8).withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any]
        return header?["__metadata__"] as? [String: String] ?? [:]
    }

    func maxScaledError(_ a: [Float], _ r: [Float]) -> Float {
        XCTAssertEqual(a.count, r.count)
        return zip(a, r).map { abs($0 - $1) / (1 + abs($1)) }.max() ?? .infinity
    }

    func testAblatePatchAndAddMatchHF() throws {
        let directory = try CLI.temporaryDirectory(self)
        let reference = try reference()

        let zero = try logits(["--ablate", "blocks.1.attn.hook_z[:, :, 1]=zero"], in: directory, json: true)
        XCTAssertLessThanOrEqual(maxScaledError(zero.logits, reference["z_zero_head.logits"]!), 1e-4)
        let report = try CLI.json(zero.outcome)
        let effect = try XCTUnwrap(report["effect"] as? [String: Any])
        XCTAssertGreaterThan(try XCTUnwrap(effect["max_abs_logit_delta"] as? Double), 1e-3)
        XCTAssertNotNil(effect["clean_loss"] as? Double)
        XCTAssertNotNil(effect["patched_loss"] as? Double)

        let mean = try logits(["--ablate", "blocks.2.mlp.hook_post[:, :, 10:50]=mean"], in: directory)
        XCTAssertLessThanOrEqual(maxScaledError(mean.logits, reference["mlp_post_mean.logits"]!), 1e-4)
        XCTAssertTrue(mean.outcome.output.contains("loss    clean"), mean.outcome.output)

        // A cached activation of another prompt, as a `run` output would hold it.
        let cache = directory.appendingPathComponent("other.safetensors")
        let entries = try SafeTensors.read(Self.fixtures.appendingPathComponent("parallel_erf_r025.safetensors"))
        let source = try XCTUnwrap(entries["resid_post_patch_pos.source"])
        try SafeTensorsWriter.write(["blocks.0.hook_resid_post": Tensor(shape: source.shape, data: try source.float32())], to: cache)
        let patched = try logits(["--patch", cache.path, "--patch-hooks", "blocks.0.hook_resid_post[:, 3]"], in: directory)
        XCTAssertLessThanOrEqual(maxScaledError(patched.logits, reference["resid_post_patch_pos.logits"]!), 1e-4)

        let vector = directory.appendingPathComponent("vector.safetensors")
        let steering = try XCTUnwrap(entries["resid_post_add.source"])
        try SafeTensorsWriter.write(["steer": Tensor(shape: steering.shape, data: try steering.float32())], to: vector)
        let added = try logits(["--add", "blocks.0.hook_resid_post=" + vector.path], in: directory)
        XCTAssertLessThanOrEqual(maxScaledError(added.logits, reference["resid_post_add.logits"]!), 1e-4)
    }

    func testMetadataHoldsTokensAndTokenizer() throws {
        try CLI.requireShared()
        let out = try CLI.temporaryDirectory(self).appendingPathComponent("acts.safetensors")
        let outcome = try CLI.run(["run", "--model", CLI.model.path, "--tokens", "5 6 7\n8 9 10", "--tokenizer", CLI.tokenizer.path,
                                   "--hooks", "blocks.0.attn.hook_pattern", "--out", out.path])
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        let metadata = try Self.metadata(out)
        XCTAssertEqual(metadata["tokens"], "[[5,6,7],[8,9,10]]")
        XCTAssertEqual(metadata["tokenizer"], "20B_tokenizer.json")
        let bytes = try Data(contentsOf: CLI.tokenizer)
        XCTAssertEqual(metadata["tokenizer_sha256"], bytes.withUnsafeBytes { SHA256.hex($0) })
        XCTAssertEqual(try SafeTensors.read(out)["blocks.0.attn.hook_pattern"]?.shape, [2, 2, 3, 3])
    }

    func testBadInterventionsAreClearErrors() throws {
        let directory = try CLI.temporaryDirectory(self)
        let tokens = Self.model.appendingPathComponent("tokens.txt").path
        func run(_ extra: [String]) throws -> CommandRunner.Outcome {
            try CLI.run(["run", "--model", Self.model.path, "--tokens", "@" + tokens] + extra)
        }
        assertFails(try run(["--ablate", "blocks.1.attn.hook_z[:, :, 7]=zero"]), as: .data, mentioning: ["index 7", "axis 2"])
        assertFails(try run(["--ablate", "blocks.1.attn.hook_z=half"]), as: .data, mentioning: ["--ablate", "half"])
        assertFails(try run(["--ablate", "blocks.1.attn.hook_zed=zero"]), as: .data, mentioning: ["--ablate", "hook_zed"])
        assertFails(try run(["--ablate", "blocks.1.attn.hook_z"]), as: .argument, mentioning: ["--ablate"])
        let missing = directory.appendingPathComponent("missing.safetensors").path
        assertFails(try run(["--patch", missing]), as: .data, mentioning: [missing])
        let wrong = directory.appendingPathComponent("wrong.safetensors")
        try SafeTensorsWriter.write(["blocks.0.hook_resid_post": Tensor(shape: [1, 2, 3], data: [Float](repeating: 0, count: 6))], to: wrong)
        assertFails(try run(["--patch", wrong.path]), as: .data, mentioning: ["blocks.0.hook_resid_post", "[1, 2, 3]"])
        assertFails(try run(["--add", "blocks.0.hook_resid_post=" + wrong.path]), as: .data, mentioning: ["[1, 2, 3]"])
        assertFails(try run([]), as: .argument, mentioning: ["--hooks"])
    }
}
