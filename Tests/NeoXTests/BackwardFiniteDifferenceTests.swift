import Formats
import Foundation
import TestSupport
import XCTest
@testable import NeoX

/// The backward pass against central finite differences of the loss on a tiny smooth model
/// (sequential residual, tanh-GELU, full rotary), independent of any PyTorch reference: for the
/// largest-gradient element of several tensors, (L(w + h) − L(w − h)) / 2h ≈ ∂L/∂w.
final class BackwardFiniteDifferenceTests: XCTestCase {
    func testLargestGradientElementsMatchFiniteDifferences() throws {
        let dir = ForwardFixtures.root.appendingPathComponent("sequential_tanh_r100")
        let model = try NeoXModel(directory: dir)
        let tokens = try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt"))
        let targets = try LossTargets.labels(tokens)
        let names = ["gpt_neox.layers.0.attention.query_key_value.weight", "gpt_neox.layers.1.attention.dense.weight",
                     "gpt_neox.layers.0.mlp.dense_h_to_4h.bias", "gpt_neox.layers.1.input_layernorm.weight",
                     "gpt_neox.layers.0.post_attention_layernorm.bias", "gpt_neox.final_layer_norm.weight",
                     "embed_out.weight", "gpt_neox.embed_in.weight"]
        let gradients = try model.backward(tokens: tokens, targets: targets,
                                           plan: GradientPlan(config: model.config, parameters: names, hooks: [])).gradients
        var tensors = try SafeTensors.read(dir.appendingPathComponent("model.safetensors"))
            .mapValues { Tensor(shape: $0.shape, data: try $0.float32()) }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("neox-fd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        try FileManager.default.copyItem(at: dir.appendingPathComponent("config.json"), to: scratch.appendingPathComponent("config.json"))

        func loss(_ name: String, _ index: Int, _ value: Float) throws -> Double {
            var changed = tensors
            changed[name]!.data[index] = value
            try SafeTensorsWriter.write(changed, to: scratch.appendingPathComponent("model.safetensors"))
            return try NeoXModel(directory: scratch).loss(tokens: tokens, targets: targets).loss
        }
        for name in names {
            let g = gradients[name]!.data
            let index = g.indices.max { abs(g[$0]) < abs(g[$1]) }!
            let w = tensors[name]!.data[index], h: Float = 1e-2
            let fd = (try loss(name, index, w + h) - loss(name, index, w - h)) / Double(2 * h)
            XCTAssertEqual(fd, Double(g[index]), accuracy: 2e-2 * abs(Double(g[index])) + 2e-4, "\(name)[\(index)]")
            print("FD \(name)[\(index)]: backward \(g[index]), finite difference \(fd)")
        }
        tensors.removeAll()
    }
}
