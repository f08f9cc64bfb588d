import Formats
import Foundation
import TestSupport
import XCTest
@testable import NeoX

/// The backward pass's API: plans, the observer, the two loss conventions, errors by kind.
final class BackwardAPITests: XCTestCase {
    let dir = ForwardFixtures.root.appendingPathComponent("parallel_erf_r025")

    func testObserverStreamsOnlyThePlannedGradientsTopDownWithTheSameValues() throws {
        let model = try NeoXModel(directory: dir)
        let tokens = try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt"))
        let targets = try LossTargets.labels(tokens)
        let full = try model.backward(tokens: tokens, targets: targets, plan: .all(for: model.config))
        let plan = try GradientPlan(config: model.config, parameters: HookFilter("gpt_neox.layers.2.mlp.*"),
                                    hooks: HookFilter("blocks.1.hook_resid_post,blocks.2.hook_attn_out_grad"))
        XCTAssertEqual(plan.lowestLayer, 1)
        var seen: [String] = []
        let observed = try model.backward(tokens: tokens, targets: targets, plan: plan) { point, shape, values in
            seen.append(point.name)
            XCTAssertEqual(Array(values), full.gradients[point.name]?.data, point.name)
            XCTAssertEqual(shape, full.gradients[point.name]?.shape, point.name)
        }
        XCTAssertTrue(observed.gradients.isEmpty)
        XCTAssertEqual(observed.loss, full.loss)
        XCTAssertEqual(seen, ["blocks.2.hook_attn_out_grad",
                              "gpt_neox.layers.2.mlp.dense_h_to_4h.weight", "gpt_neox.layers.2.mlp.dense_h_to_4h.bias",
                              "gpt_neox.layers.2.mlp.dense_4h_to_h.weight", "gpt_neox.layers.2.mlp.dense_4h_to_h.bias",
                              "blocks.1.hook_resid_post_grad"])
    }

    func testPythiaRowsConventionGivesTheLabelsConventionsParameterGradients() throws {
        let model = try NeoXModel(directory: dir)
        let rows = try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt"))
        let (inputs, targets) = try LossTargets.shifted(rows: rows, positions: [2, 5, 16])
        XCTAssertEqual(inputs.map(\.count), rows.map { $0.count - 1 })
        XCTAssertEqual(targets.count, 3 * rows.count)
        let plan = try GradientPlan(config: model.config, parameters: .all, hooks: .none)
        let shifted = try model.backward(tokens: inputs, targets: targets, plan: plan)
        let labels = try model.backward(tokens: rows, targets: LossTargets.labels(rows, positions: [2, 5, 16]), plan: plan)
        XCTAssertEqual(shifted.loss, labels.loss, accuracy: 1e-6 * labels.loss)
        for (name, tensor) in labels.gradients {
            XCTAssertLessThanOrEqual(GradientFixtures.errorRatio(shifted.gradients[name]!.data, tensor.data), 1e-5, name)
        }
    }

    /// Attention in blocks of 5 queries (fixture sequences are shorter than the default 128): the
    /// multi-block path (probabilities recomputed per block, dK/dV accumulated across blocks) gives
    /// the one-block gradients, which the parity tests check against PyTorch.
    func testQueryBlocksGiveTheSameGradients() throws {
        for name in ["parallel_tanh_nobias_tied", "sequential_tanh_r100"] {
            let dir = ForwardFixtures.root.appendingPathComponent(name)
            let model = try NeoXModel(directory: dir)
            let tokens = try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt"))
            let targets = try LossTargets.labels(tokens), plan = GradientPlan.all(for: model.config)
            let whole = try model.backward(tokens: tokens, targets: targets, plan: plan)
            let blocked = try model.backward(tokens: tokens, targets: targets, plan: plan, queryBlock: 5)
            XCTAssertEqual(blocked.loss, whole.loss, accuracy: 1e-6 * whole.loss)
            for (key, tensor) in whole.gradients {
                XCTAssertLessThanOrEqual(GradientFixtures.errorRatio(blocked.gradients[key]!.data, tensor.data), 1e-5, "\(name) \(key)")
            }
        }
    }

    func testErrorsHaveKinds() throws {
        let model = try NeoXModel(directory: dir)
        let config = model.config
        XCTAssertThrowsError(try GradientPlan(config: config, parameters: HookFilter("gpt_neox.layers.9.*"), hooks: .none)) {
            XCTAssertEqual(($0 as? NeoXError)?.kind, .unknownParameter)
        }
        XCTAssertThrowsError(try GradientPlan(config: config, parameters: .none, hooks: HookFilter("blocks.*.hook_resid_mid_grad"))) {
            XCTAssertEqual(($0 as? NeoXError)?.kind, .unknownHook)
        }
        XCTAssertThrowsError(try LossTargets.labels([[1, 2, 3]], positions: [0])) {
            XCTAssertEqual(($0 as? NeoXError)?.kind, .invalidRequest)
        }
        XCTAssertThrowsError(try model.loss(tokens: [[1]], targets: LossTargets.labels([[1]]))) {
            XCTAssertEqual(($0 as? NeoXError)?.kind, .invalidRequest)   // one token: nothing to predict
        }
        let partial = try NeoXModel(directory: dir, layers: 1)
        XCTAssertThrowsError(try partial.loss(tokens: [[1, 2]], targets: LossTargets.labels([[1, 2]]))) {
            XCTAssertEqual(($0 as? NeoXError)?.kind, .notLoaded)
        }
    }
}
