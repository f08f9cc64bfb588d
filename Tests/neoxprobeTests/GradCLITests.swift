import Formats
import Foundation
import TestSupport
import XCTest

/// `neoxprobe grad` end to end: the written gradients against the committed PyTorch reference
/// (Tests/Fixtures/grad, float64 autograd), accumulation over passes, Pythia rows against
/// `perplexity`'s NLL of the same rows, and errors that name the flag.
final class GradCLITests: XCTestCase {
    static let fixture = RepositoryPaths.fixtures("engine/parallel_erf_r025")

    func gradients(_ url: URL) throws -> [String: Tensor] {
        try SafeTensors.read(url).mapValues { Tensor(shape: $0.shape, data: try $0.float32()) }
    }

    /// max|a − r| / max|r|.
    func ratio(_ a: [Float], _ r: [Float]) -> Double {
        var worst = 0.0, scale = 0.0
        for (x, y) in zip(a, r) { worst = max(worst, abs(Double(x) - Double(y))); scale = max(scale, abs(Double(y))) }
        return a.count == r.count ? worst / max(scale, .leastNormalMagnitude) : .infinity
    }

    func testTokensMatchPyTorchAndPassesAccumulate() throws {
        let dir = try CLI.temporaryDirectory(self)
        let whole = dir.appendingPathComponent("whole.safetensors"), split = dir.appendingPathComponent("split.safetensors")
        let common = ["grad", "--model", Self.fixture.path, "--tokens", "@" + Self.fixture.appendingPathComponent("tokens.txt").path,
                      "--params", "*", "--hooks", "blocks.*.hook_resid_pre,blocks.2.hook_mlp_out_grad", "--json"]
        let result = try CLI.json(try CLI.run(common + ["--out", whole.path]))
        let summary = try CLI.fixture("grad", "parallel_erf_r025.json")
        let expectedLoss = try XCTUnwrap(summary["loss"] as? Double)
        XCTAssertEqual(try XCTUnwrap(result["loss"] as? Double), expectedLoss, accuracy: 1e-6 * expectedLoss)
        XCTAssertEqual(result["token_count"] as? Int, summary["token_count"] as? Int)
        XCTAssertEqual(result["convention"] as? String, "hf_labels")

        let reference = try gradients(RepositoryPaths.fixtures("grad").appendingPathComponent("parallel_erf_r025.safetensors"))
        let ours = try gradients(whole)
        let expectedNames = reference.keys.filter { !$0.hasPrefix("blocks.") || $0.hasSuffix("hook_resid_pre_grad") || $0 == "blocks.2.hook_mlp_out_grad" }
        XCTAssertEqual(Set(ours.keys), Set(expectedNames))
        for (name, tensor) in ours {
            XCTAssertEqual(tensor.shape, reference[name]?.shape, name)
            XCTAssertLessThanOrEqual(ratio(tensor.data, reference[name]!.data), 1e-4, name)
        }

        // One row per pass: the float64-weighted sum gives the same gradient of the whole batch's loss.
        let passes = try CLI.json(try CLI.run(common + ["--micro-batch", "1", "--out", split.path]))
        XCTAssertEqual(passes["passes"] as? Int, 2)
        XCTAssertEqual(try XCTUnwrap(passes["loss"] as? Double), expectedLoss, accuracy: 1e-6 * expectedLoss)
        for (name, tensor) in try gradients(split) {
            XCTAssertEqual(tensor.shape, ours[name]?.shape, name)
            XCTAssertLessThanOrEqual(ratio(tensor.data, ours[name]!.data), 1e-5, name)
        }
    }

    func testPythiaRowsLossIsPerplexitysNLL() throws {
        try CLI.requireShared()
        let dir = try CLI.temporaryDirectory(self)
        let out = dir.appendingPathComponent("g.safetensors")
        let result = try CLI.json(try CLI.run(["grad", "--model", CLI.model.path, "--data", CLI.dataset.path, "--rows", "0:2",
                                               "--params", "gpt_neox.layers.3.mlp.*", "--out", out.path, "--json"]))
        let nll = try CLI.json(try CLI.run(["perplexity", "--model", CLI.model.path, "--data", CLI.dataset.path + ".bin",
                                            "--rows", "0:2", "--json"]))
        XCTAssertEqual(result["token_count"] as? Int, nll["n"] as? Int)
        XCTAssertEqual(try XCTUnwrap(result["loss"] as? Double), try XCTUnwrap(nll["nll"] as? Double), accuracy: 1e-6)
        XCTAssertEqual(result["convention"] as? String, "pythia_rows")
        XCTAssertEqual(Set(try gradients(out).keys), ["gpt_neox.layers.3.mlp.dense_h_to_4h.weight", "gpt_neox.layers.3.mlp.dense_h_to_4h.bias",
                                                     "gpt_neox.layers.3.mlp.dense_4h_to_h.weight", "gpt_neox.layers.3.mlp.dense_4h_to_h.bias"])
    }

    func testErrorsNameTheFlag() throws {
        let out = try CLI.temporaryDirectory(self).appendingPathComponent("g.safetensors").path
        let base = ["grad", "--model", Self.fixture.path, "--tokens", "@" + Self.fixture.appendingPathComponent("tokens.txt").path, "--out", out]
        assertFails(try CLI.run(base + ["--params", "gpt_neox.layers.7.*"]), as: .data, mentioning: ["--params", "gpt_neox.layers.7.*"])
        assertFails(try CLI.run(base + ["--hooks", "blocks.0.hook_resid_mid"]), as: .data, mentioning: ["--hooks", "hook_resid_mid"])
        assertFails(try CLI.run(base + ["--params", "*", "--positions", "40"]), as: .data, mentioning: ["--positions", "40"])
        assertFails(try CLI.run(base + ["--params", "*", "--positions", "0"]), as: .argument, mentioning: ["--positions"])
        assertFails(try CLI.run(base), as: .argument, mentioning: ["--params"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
