import Formats
import Foundation
import TestSupport
import XCTest
@testable import NeoX

/// Committed reference gradients (written by Tests/Fixtures/generate_grad.py: PyTorch autograd on
/// the HF model in float64).
enum GradientFixtures {
    static let root = RepositoryPaths.fixtures("grad")

    struct Summary: Decodable {
        var loss: Double
        var token_count: Int
        var restricted_positions: [Int]?
        var restricted_loss: Double?
        var embed_in_rows: [Int]?
        var embed_out_row_stride: Int?
        var length: Int?
    }

    static func summary(_ name: String) throws -> Summary {
        try JSONDecoder().decode(Summary.self, from: Data(contentsOf: root.appendingPathComponent(name + ".json")))
    }

    static func reference(_ name: String) throws -> [String: Tensor] {
        try ForwardFixtures.reference(root.appendingPathComponent(name + ".safetensors"))
    }

    /// max|a − r| / max|r|: the parity requirement is ≤ 1e-4 per tensor.
    static func errorRatio(_ a: [Float], _ r: [Float]) -> Double {
        precondition(a.count == r.count, "sizes differ: \(a.count) vs \(r.count)")
        var worst = 0.0, scale = 0.0
        for i in 0..<a.count {
            let e = abs(Double(a[i]) - Double(r[i]))
            worst = e.isNaN ? .infinity : max(worst, e)
            scale = max(scale, abs(Double(r[i])))
        }
        return scale > 0 ? worst / scale : worst
    }
}

final class BackwardParityTests: XCTestCase {
    func checkParity(_ fixture: String, model name: String, activation: MLPActivation? = nil) throws {
        let dir = ForwardFixtures.root.appendingPathComponent(name)
        let model = try NeoXModel(directory: dir, activation: activation)
        let tokens = try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt"))
        let reference = try GradientFixtures.reference(fixture), summary = try GradientFixtures.summary(fixture)
        let result = try model.backward(tokens: tokens, targets: LossTargets.labels(tokens), plan: .all(for: model.config))

        XCTAssertEqual(result.tokenCount, summary.token_count)
        XCTAssertEqual(result.loss, summary.loss, accuracy: 1e-6 * abs(summary.loss), fixture)
        // Everything the reference has, we have (ln_final's gradient is extra: HF has no hook for it).
        XCTAssertEqual(Set(result.gradients.keys).subtracting(["ln_final.hook_normalized_grad"]), Set(reference.keys), fixture)
        var worst = 0.0, worstName = ""
        for (key, ref) in reference.sorted(by: { $0.key < $1.key }) {
            guard let ours = result.gradients[key] else { continue }
            XCTAssertEqual(ours.shape, ref.shape, "\(fixture) \(key)")
            let ratio = GradientFixtures.errorRatio(ours.data, ref.data)
            XCTAssertLessThanOrEqual(ratio, 1e-4, "\(fixture) \(key)")
            if ratio > worst { (worst, worstName) = (ratio, key) }
        }
        if let positions = summary.restricted_positions, let expected = summary.restricted_loss {
            let restricted = try model.loss(tokens: tokens, targets: LossTargets.labels(tokens, positions: positions))
            XCTAssertEqual(restricted.loss, expected, accuracy: 1e-6 * abs(expected), "\(fixture) restricted loss")
            XCTAssertEqual(restricted.tokenCount, positions.count * tokens.count)
        }
        print("GRAD PARITY \(fixture): loss rel error \(abs(result.loss - summary.loss) / summary.loss), max |g−ref|/max|ref| \(worst) (\(worstName)) over \(reference.count) tensors")
    }

    func testParallelErfRotaryQuarter() throws { try checkParity("parallel_erf_r025", model: "parallel_erf_r025") }
    func testSequentialTanhRotaryFull() throws { try checkParity("sequential_tanh_r100", model: "sequential_tanh_r100") }
    func testParallelTanhNoBiasTied() throws { try checkParity("parallel_tanh_nobias_tied", model: "parallel_tanh_nobias_tied") }
    func testSequentialReluLayerNormEps() throws { try checkParity("sequential_relu_r025", model: "sequential_relu_r025") }
    func testTanhOverrideOnErfModel() throws {
        try checkParity("parallel_erf_r025_tanh", model: "parallel_erf_r025", activation: .geluTanh)
    }
}

/// pythia-mini checkpoints from ../shared on the first 64 tokens of mini-Pile row 0.
final class BackwardPythiaMiniTests: XCTestCase {
    func checkStep(_ step: String) throws {
        let dir = ForwardFixtures.shared.appendingPathComponent("models/pythia-mini/\(step)")
        guard FileManager.default.fileExists(atPath: dir.path) else { throw XCTSkip("\(dir.path) not present") }
        let fixture = "pythia-mini-\(step)"
        let summary = try GradientFixtures.summary(fixture), reference = try GradientFixtures.reference(fixture)
        let row = try ForwardFixtures.tokens(ForwardFixtures.root.appendingPathComponent("pythia-mini/row0_tokens.txt"))[0]
        let tokens = [Array(row.prefix(summary.length!))]
        let model = try NeoXModel(directory: dir)
        let result = try model.backward(tokens: tokens, targets: LossTargets.labels(tokens), plan: .all(for: model.config))
        XCTAssertEqual(result.loss, summary.loss, accuracy: 1e-6 * abs(summary.loss), fixture)
        XCTAssertEqual(result.tokenCount, summary.token_count)

        let d = model.config.hiddenSize
        var worst = 0.0, worstName = ""
        func check(_ key: String, _ ours: [Float], _ ref: [Float]) {
            let ratio = GradientFixtures.errorRatio(ours, ref)
            XCTAssertLessThanOrEqual(ratio, 1e-4, "\(fixture) \(key)")
            if ratio > worst { (worst, worstName) = (ratio, key) }
        }
        for (key, ref) in reference {
            guard let ours = result.gradients[key] else { XCTFail("\(fixture): no gradient \(key)"); continue }
            switch key {
            case "gpt_neox.embed_in.weight":   // the reference keeps only the rows the tokens touch
                check(key, summary.embed_in_rows!.flatMap { ours.data[($0 * d)..<(($0 + 1) * d)] }, ref.data)
            case "embed_out.weight":           // … and every stride-th row of the unembedding
                let stride = summary.embed_out_row_stride!
                check(key, Swift.stride(from: 0, to: ours.shape[0], by: stride).flatMap { ours.data[($0 * d)..<(($0 + 1) * d)] }, ref.data)
            default:
                check(key, ours.data, ref.data)
            }
        }
        // Parallel residual: attn_out and mlp_out receive exactly resid_post's gradient.
        for L in 0..<model.config.numLayers {
            let ref = reference["blocks.\(L).hook_resid_post_grad"]!.data
            check("blocks.\(L).hook_attn_out_grad", result.gradients["blocks.\(L).hook_attn_out_grad"]!.data, ref)
            check("blocks.\(L).hook_mlp_out_grad", result.gradients["blocks.\(L).hook_mlp_out_grad"]!.data, ref)
        }
        print("GRAD PARITY \(fixture): loss rel error \(abs(result.loss - summary.loss) / summary.loss), max |g−ref|/max|ref| \(worst) (\(worstName))")
    }

    func testStep0() throws { try checkStep("step0") }
    func testStep4() throws { try checkStep("step4") }
    func testStep16() throws { try checkStep("step16") }
    func testStep64() throws { try checkStep("step64") }
    func testStep256() throws { try checkStep("step256") }
    func testStep512() throws { try checkStep("step512") }
    func testStep1000() throws { try checkStep("step1000") }
    func testStep2000() throws { try checkStep("step2000") }
}
