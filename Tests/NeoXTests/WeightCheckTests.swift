import Formats
import Foundation
import XCTest
@testable import NeoX

/// Weights are checked at load: NaN/±inf are refused by name (or loaded when asked), and tensors
/// the config makes the model ignore are listed rather than silently dropped.
final class WeightCheckTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("neox-weights-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: ForwardFixtures.root.appendingPathComponent("parallel_erf_r025"), to: scratch)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// Overwrites element 3 of `tensor` with `bits` (in the tensor's own dtype).
    private func poison(_ tensor: String, bits: UInt32) throws {
        let url = scratch.appendingPathComponent("model.safetensors")
        let entry = try XCTUnwrap(try SafeTensors.read(url)[tensor])
        var data = try Data(contentsOf: url)
        let at = entry.offset + 3 * entry.dtype.byteSize
        switch entry.dtype {
        case .f32: withUnsafeBytes(of: bits.littleEndian) { data.replaceSubrange(at..<(at + 4), with: $0) }
        case .f16, .bf16: withUnsafeBytes(of: UInt16(truncatingIfNeeded: bits).littleEndian) { data.replaceSubrange(at..<(at + 2), with: $0) }
        default: XCTFail("unexpected dtype \(entry.dtype)")
        }
        try data.write(to: url)
    }

    func testNonFiniteWeightsAreRefusedByNameUnlessAllowed() throws {
        let tensor = "gpt_neox.layers.1.mlp.dense_4h_to_h.weight"
        let dtype = try XCTUnwrap(try SafeTensors.read(scratch.appendingPathComponent("model.safetensors"))[tensor]).dtype
        try poison(tensor, bits: dtype == .f32 ? 0x7FC0_0000 : dtype == .bf16 ? 0x7FC0 : 0x7E00)   // a quiet NaN
        XCTAssertThrowsError(try NeoXModel(directory: scratch)) { error in
            XCTAssertEqual((error as? FormatError)?.kind, .nonFinite)
            XCTAssertTrue("\(error)".contains(tensor) && "\(error)".contains("1 non-finite"), "\(error)")
        }
        let model = try NeoXModel(directory: scratch, allowNonFinite: true)
        XCTAssertTrue(model.weights.layers[1].downWeight[3].isNaN)
        // Blocks that are not loaded are not checked: the first block alone loads.
        XCTAssertNoThrow(try NeoXModel(directory: scratch, layers: 1, loadUnembedding: false))
    }

    /// The memory-mapped embedding table is checked row by row as a batch gathers it.
    func testNonFiniteEmbeddingRowsAreCaughtWhenUsed() throws {
        let tensor = "gpt_neox.embed_in.weight"
        let dtype = try XCTUnwrap(try SafeTensors.read(scratch.appendingPathComponent("model.safetensors"))[tensor]).dtype
        try poison(tensor, bits: dtype == .f32 ? 0x7F80_0000 : dtype == .bf16 ? 0x7F80 : 0x7C00)   // +inf in row 0
        let model = try NeoXModel(directory: scratch)
        XCTAssertNoThrow(try model.forward(tokens: [[5, 6, 7]], capture: HookFilter("blocks.0.hook_resid_pre")))
        XCTAssertThrowsError(try model.forward(tokens: [[5, 0, 7]], capture: HookFilter("blocks.0.hook_resid_pre"))) { error in
            XCTAssertEqual((error as? FormatError)?.kind, .nonFinite)
            XCTAssertTrue("\(error)".contains("row 0") && "\(error)".contains("position 1"), "\(error)")
        }
        XCTAssertNoThrow(try NeoXModel(directory: scratch, allowNonFinite: true).forward(tokens: [[5, 0, 7]], capture: .all))
    }

    func testTensorsTheConfigDisablesAreListed() throws {
        XCTAssertEqual(try NeoXModel(directory: scratch).weights.ignoredTensors, [])
        let configURL = scratch.appendingPathComponent("config.json")
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        config["attention_bias"] = false
        config["tie_word_embeddings"] = true
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        let ignored = try NeoXModel(directory: scratch).weights.ignoredTensors
        XCTAssertTrue(ignored.contains("embed_out.weight"), "\(ignored)")
        XCTAssertTrue(ignored.contains("gpt_neox.layers.0.attention.query_key_value.bias"), "\(ignored)")
        XCTAssertTrue(ignored.contains("gpt_neox.layers.0.attention.dense.bias"), "\(ignored)")
    }
}
