import Formats
import Foundation
import TestSupport
import XCTest
@testable import NeoX

/// Streamed and resident weights run the same kernels on the same fp32 values in the same order:
/// every hook and the logits must be bit-identical, on every engine fixture config and every
/// pythia-mini step; so must the backward's gradients and the decoder's logits.
final class WeightResidencyTests: XCTestCase {
    static let miniSteps = ["step0", "step4", "step16", "step64", "step256", "step512", "step1000", "step2000"]

    func assertBitIdentical(_ directory: URL, tokens: [[Int32]], label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let resident = try NeoXModel(directory: directory, residency: .resident)
        let streamed = try NeoXModel(directory: directory, residency: .streamed)
        XCTAssertEqual(resident.weights.residency, .resident)
        XCTAssertEqual(streamed.weights.residency, .streamed)
        XCTAssertTrue(streamed.weights.residentBlocks.isEmpty, "streamed weights must not hold fp32 blocks")
        let a = try resident.forward(tokens: tokens, capture: .all, logits: .all)
        // Twice: the second pass reuses the pooled block buffers (overwritten in place).
        for pass in 0..<2 {
            let b = try streamed.forward(tokens: tokens, capture: .all, logits: .all)
            XCTAssertEqual(Set(a.activations.names), Set(b.activations.names), label)
            for name in a.activations.names {
                XCTAssertEqual(a.activations[name]?.data, b.activations[name]?.data, "\(label) pass \(pass): \(name) differs", file: file, line: line)
            }
            XCTAssertEqual(a.logits?.data, b.logits?.data, "\(label): logits differ", file: file, line: line)
        }
    }

    func testFixtureConfigsBitIdentical() throws {
        for name in ForwardFixtures.tiny {
            let dir = ForwardFixtures.root.appendingPathComponent(name)
            try assertBitIdentical(dir, tokens: try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt")), label: name)
        }
    }

    func testPythiaMiniStepsBitIdentical() throws {
        let tokens = try ForwardFixtures.tokens(ForwardFixtures.root.appendingPathComponent("pythia-mini/row0_tokens.txt"))
        let short = [Array(tokens[0].prefix(512)), Array(tokens[0].suffix(512))]
        for step in Self.miniSteps {
            let dir = ForwardFixtures.shared.appendingPathComponent("models/pythia-mini/\(step)")
            guard FileManager.default.fileExists(atPath: dir.path) else { throw XCTSkip("\(dir.path) not present") }
            try assertBitIdentical(dir, tokens: short, label: step)
        }
    }

    func testBackwardAndDecoderBitIdentical() throws {
        let dir = ForwardFixtures.root.appendingPathComponent("sequential_tanh_r100")
        let tokens = try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt"))
        let resident = try NeoXModel(directory: dir, residency: .resident)
        let streamed = try NeoXModel(directory: dir, residency: .streamed)
        let config = resident.config
        let plan = try GradientPlan(config: config, parameters: .all, hooks: .all)
        let a = try resident.backward(tokens: tokens, targets: .labels(tokens), plan: plan)
        let b = try streamed.backward(tokens: tokens, targets: .labels(tokens), plan: plan)
        XCTAssertEqual(a.loss, b.loss)
        XCTAssertEqual(Set(a.gradients.keys), Set(b.gradients.keys))
        for (name, g) in a.gradients { XCTAssertEqual(g.data, b.gradients[name]?.data, "gradient \(name) differs") }

        let prompt = [Array(tokens[0].prefix(5))]
        let da = try Decoder(model: resident, batch: 1, capacity: 16), db = try Decoder(model: streamed, batch: 1, capacity: 16)
        XCTAssertEqual(try da.feed(prompt), try db.feed(prompt))
    }

    func testAutomaticChoiceBySize() throws {
        let table = try PythiaSuiteTable.load()
        XCTAssertEqual(WeightResidency.automatic(config: try table.config("70m")), .resident)
        XCTAssertEqual(WeightResidency.automatic(config: try table.config("160m")), .resident)
        XCTAssertEqual(WeightResidency.automatic(config: try table.config("410m")), .resident)
        for size in ["1b", "1.4b", "2.8b", "6.9b", "12b"] {
            XCTAssertEqual(WeightResidency.automatic(config: try table.config(size)), .streamed, size)
        }
        let mini = ForwardFixtures.root.appendingPathComponent("parallel_erf_r025")
        XCTAssertEqual(try NeoXModel(directory: mini).weights.residency, .resident)
    }

    func testStreamedNonFiniteBlockRefusedByName() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("residency-nan-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: ForwardFixtures.root.appendingPathComponent("parallel_erf_r025"), to: scratch)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let tensor = "gpt_neox.layers.1.mlp.dense_4h_to_h.weight"
        let url = scratch.appendingPathComponent("model.safetensors")
        let entry = try XCTUnwrap(try SafeTensors.read(url)[tensor])
        var data = try Data(contentsOf: url)
        let at = entry.offset + 3 * entry.dtype.byteSize
        let nan: [UInt8] = entry.dtype == .f32 ? [0, 0, 0xC0, 0x7F] : entry.dtype == .bf16 ? [0xC0, 0x7F] : [0x00, 0x7E]
        data.replaceSubrange(at..<(at + nan.count), with: nan)
        try data.write(to: url)
        let model = try NeoXModel(directory: scratch, residency: .streamed)   // streamed blocks are checked as they are widened
        let tokens = try ForwardFixtures.tokens(scratch.appendingPathComponent("tokens.txt"))
        XCTAssertThrowsError(try model.forward(tokens: tokens, capture: .all)) { error in
            XCTAssertEqual((error as? FormatError)?.kind, .nonFinite)
            XCTAssertTrue("\(error)".contains(tensor) && "\(error)".contains("1 non-finite"), "\(error)")
        }
        XCTAssertNoThrow(try NeoXModel(directory: scratch, allowNonFinite: true, residency: .streamed).forward(tokens: tokens, capture: .all))
    }
}
