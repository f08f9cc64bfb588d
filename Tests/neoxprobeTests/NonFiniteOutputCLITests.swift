import Foundation
import TestSupport
import XCTest
@testable import Formats

/// Non-finite results are flagged in every output: the text says NOT FINITE, the JSON writes null
/// and names the field in `nonfinite_results`, standard error warns. Never a bare `nan`.
final class NonFiniteOutputCLITests: XCTestCase {
    /// step0 of pythia-mini with the final LayerNorm's weight set to NaN (loaded with --allow-nonfinite).
    private func nanModel() throws -> URL {
        let directory = try CLI.temporaryDirectory(self).appendingPathComponent("nan-model")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let source = CLI.suite.appendingPathComponent("step0")
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: directory.appendingPathComponent(name))
        }
        let weights = directory.appendingPathComponent("model.safetensors")
        let entry = try XCTUnwrap(try SafeTensors.read(weights)["gpt_neox.final_layer_norm.weight"])
        let nan: [UInt8] = switch entry.dtype {
        case .f32: [0x00, 0x00, 0xC0, 0x7F]
        case .f16: [0x00, 0x7E]
        default: [0xC0, 0x7F]
        }
        let offset = entry.offset
        var bytes = try Data(contentsOf: weights)
        for i in 0..<entry.elementCount { for (k, b) in nan.enumerated() { bytes[offset + i * nan.count + k] = b } }
        try bytes.write(to: weights)
        return directory
    }

    func testNonFiniteLambadaResultsAreFlaggedInTextAndJSON() throws {
        try CLI.requireShared()
        let model = try nanModel()
        let json = try CLI.run(["lambada", "--model", model.path, "--tokenizer", CLI.tokenizer.path, "--limit", "2", "--json", "--allow-nonfinite"])
        let object = try CLI.json(json)
        let flagged = try XCTUnwrap(object["nonfinite_results"] as? [String], "\(object)")
        XCTAssertTrue(flagged.contains("perplexity"), "\(flagged)")
        XCTAssertTrue(object["perplexity"] is NSNull)
        XCTAssertTrue(json.standardError.contains("non-finite results"), json.standardError)
        let text = try CLI.run(["lambada", "--model", model.path, "--tokenizer", CLI.tokenizer.path, "--limit", "2", "--allow-nonfinite"])
        XCTAssertEqual(text.status, 0, text.standardError)
        XCTAssertTrue(text.output.contains("NOT FINITE"), text.output)
    }
}
