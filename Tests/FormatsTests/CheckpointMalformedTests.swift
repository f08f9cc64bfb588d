import Foundation
import TestSupport
import XCTest
@testable import Formats

/// Broken model directories, derived in a scratch folder from the tiny transformers-written
/// safetensors fixture: each must fail with a message naming the file and the problem.
final class CheckpointMalformedTests: XCTestCase {
    private var scratch: URL!
    private var model: URL!

    override func setUpWithError() throws {
        scratch = try makeScratchDirectory()
        model = scratch.appendingPathComponent("model")
        try FileManager.default.copyItem(at: CheckpointFixtures.url("tiny-safetensors"), to: model)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    private var weights: URL { model.appendingPathComponent("model.safetensors") }
    private var configURL: URL { model.appendingPathComponent("config.json") }

    /// The fixture's safetensors split into its JSON header and data section.
    private func parts() throws -> (header: [String: Any], data: Data) {
        let bytes = try Data(contentsOf: weights)
        let length = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: bytes[8..<(8 + length)]) as? [String: Any])
        return (header, bytes.subdata(in: (8 + length)..<bytes.count))
    }

    private func write(headerBytes: Data, data: Data, declaredLength: UInt64? = nil) throws {
        var out = Data()
        var length = (declaredLength ?? UInt64(headerBytes.count)).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(headerBytes)
        out.append(data)
        try out.write(to: weights)
    }

    /// Rewrites the header after `edit` changes the entry of the first (sorted) tensor.
    private func editFirstTensor(_ edit: (inout [String: Any], Int) -> Void) throws -> String {
        var (header, data) = try parts()
        let name = try XCTUnwrap(header.keys.filter { $0 != "__metadata__" }.sorted().first)
        var entry = try XCTUnwrap(header[name] as? [String: Any])
        edit(&entry, data.count)
        header[name] = entry
        try write(headerBytes: JSONSerialization.data(withJSONObject: header), data: data)
        return name
    }

    private func editConfig(_ edit: (inout [String: Any]) -> Void) throws {
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: configURL)
    }

    func testPristineCopyLoads() throws {
        let record = try CheckpointFixtures.json("tiny-safetensors.json")
        let checkpoint = try Checkpoint(directory: model)
        XCTAssertEqual(checkpoint.layout, .safetensors)
        try assertEntries(checkpoint.entries, match: try CheckpointFixtures.tensors(record["tensors"]), "tiny-safetensors")
    }

    // MARK: - safetensors

    func testTruncatedSafetensors() throws {
        let (_, data) = try parts()
        let full = try Data(contentsOf: weights)
        try full.prefix(full.count - data.count / 2).write(to: weights)
        assertFormatError(try Checkpoint(directory: model), kind: .truncated, path: "model.safetensors", ["past the end", "truncated"])
    }

    func testHeaderLengthLargerThanFile() throws {
        let (header, data) = try parts()
        let headerBytes = try JSONSerialization.data(withJSONObject: header)
        let size = UInt64(try Data(contentsOf: weights).count)
        try write(headerBytes: headerBytes, data: data, declaredLength: size * 2)
        assertFormatError(try Checkpoint(directory: model), kind: .truncated, path: "model.safetensors", ["header length", "exceeds the file"])
    }

    func testFileTooShortForHeaderLength() throws {
        try Data([1, 2, 3]).write(to: weights)
        assertFormatError(try Checkpoint(directory: model), kind: .truncated, path: "model.safetensors", ["truncated", "too short"])
    }

    func testOffsetsPastEnd() throws {
        let name = try editFirstTensor { entry, dataLength in
            let offsets = (entry["data_offsets"] as! [Int])
            entry["data_offsets"] = [dataLength, dataLength + offsets[1] - offsets[0]]
        }
        assertFormatError(try Checkpoint(directory: model), kind: .truncated, path: "model.safetensors", ["'\(name)'", "past the end"])
    }

    /// A header length one byte short of a space-padded header still parses as JSON, but every
    /// tensor would be read a byte early: the data section no longer tiles exactly.
    func testHeaderLengthOneByteShortIsRefused() throws {
        let (header, data) = try parts()
        var headerBytes = try JSONSerialization.data(withJSONObject: header)
        headerBytes.append(contentsOf: [UInt8](repeating: 0x20, count: 8))
        try write(headerBytes: headerBytes, data: data, declaredLength: UInt64(headerBytes.count - 1))
        assertFormatError(try Checkpoint(directory: model), kind: .malformed, path: "model.safetensors", ["data section"])
    }

    func testOverlappingTensorsAreRefused() throws {
        var (header, data) = try parts()
        let names = header.keys.filter { $0 != "__metadata__" }.sorted { (offsets(header, $0)[0]) < (offsets(header, $1)[0]) }
        // Move the second tensor one element onto the first, keeping its length; the tail then has a hole.
        let second = try XCTUnwrap(names.dropFirst().first)
        var entry = try XCTUnwrap(header[second] as? [String: Any])
        let span = offsets(header, second)
        entry["data_offsets"] = [span[0] - 2, span[1] - 2]
        header[second] = entry
        try write(headerBytes: JSONSerialization.data(withJSONObject: header), data: data)
        assertFormatError(try Checkpoint(directory: model), kind: .malformed, path: "model.safetensors", ["'\(second)'", "overlaps"])
    }

    func testHoleAndLeftoverBytesAreRefused() throws {
        var (header, data) = try parts()
        // Extra bytes after the last tensor belong to nothing.
        try write(headerBytes: JSONSerialization.data(withJSONObject: header), data: data + Data([0, 0, 0, 0]))
        assertFormatError(try Checkpoint(directory: model), kind: .malformed, path: "model.safetensors", ["cover", "data section"])
        // A tensor dropped from the header leaves its bytes as a hole (or as leftover bytes at the end).
        let first = try XCTUnwrap(header.keys.filter { $0 != "__metadata__" }.min { offsets(header, $0)[0] < offsets(header, $1)[0] })
        header[first] = nil
        try write(headerBytes: JSONSerialization.data(withJSONObject: header), data: data)
        assertFormatError(try Checkpoint(directory: model), kind: .malformed, path: "model.safetensors", ["hole"])
    }

    private func offsets(_ header: [String: Any], _ name: String) -> [Int] {
        ((header[name] as? [String: Any])?["data_offsets"] as? [Int]) ?? [0, 0]
    }

    func testSpanDisagreesWithShape() throws {
        let name = try editFirstTensor { entry, _ in
            entry["shape"] = (entry["shape"] as! [Int]).map { $0 * 2 }
        }
        assertFormatError(try Checkpoint(directory: model), kind: .shapeMismatch, path: "model.safetensors", ["'\(name)'", "span", "needs"])
    }

    func testMalformedHeaderJSON() throws {
        let (_, data) = try parts()
        try write(headerBytes: Data("{\"gpt_neox.embed_in.weight\": {\"dtype\": ".utf8), data: data)
        assertFormatError(try Checkpoint(directory: model), kind: .malformed, path: "model.safetensors", ["malformed", "JSON header"])
    }

    func testUnknownDType() throws {
        let name = try editFirstTensor { entry, _ in entry["dtype"] = "Q4_K" }
        assertFormatError(try Checkpoint(directory: model), kind: .unsupported, path: "model.safetensors", ["'\(name)'", "unknown dtype", "Q4_K"])
    }

    func testMissingTensor() throws {
        let checkpoint = try Checkpoint(directory: model)
        let config = checkpoint.config
        assertFormatError(try checkpoint.tensor("gpt_neox.layers.\(config.numLayers).attention.dense.weight",
                                              shape: [config.hiddenSize, config.hiddenSize]),
                        kind: .missingTensor, path: "model", ["missing tensor", "layers.\(config.numLayers).attention.dense.weight"])
    }

    func testShapeMismatchAgainstConfig() throws {
        let original = try Checkpoint(directory: model).config
        try editConfig { $0["intermediate_size"] = original.intermediateSize * 2 }
        let checkpoint = try Checkpoint(directory: model)
        let name = "gpt_neox.layers.0.mlp.dense_h_to_4h.weight"
        let expected = [checkpoint.config.intermediateSize, checkpoint.config.hiddenSize]
        assertFormatError(try checkpoint.tensor(name, shape: expected), kind: .shapeMismatch, path: "model.safetensors",
                        ["'\(name)'", "shape", "expected \(expected)", "config.json"])
    }

    // MARK: - config.json

    func testMalformedConfig() throws {
        try Data("{\"hidden_size\": 8,".utf8).write(to: configURL)
        assertFormatError(try Checkpoint(directory: model), kind: .malformed, path: "config.json", ["malformed JSON"])
    }

    func testConfigNotAnObject() throws {
        try Data("[1, 2]".utf8).write(to: configURL)
        assertFormatError(try Checkpoint(directory: model), kind: .malformed, path: "config.json", ["not a JSON object"])
    }

    func testConfigMissingRequiredField() throws {
        try editConfig { $0.removeValue(forKey: "num_attention_heads") }
        assertFormatError(try Checkpoint(directory: model), kind: .malformed, path: "config.json", ["missing", "num_attention_heads"])
    }

    func testMissingConfig() throws {
        try FileManager.default.removeItem(at: configURL)
        assertFormatError(try Checkpoint(directory: model), kind: .notFound, path: "model", ["no config.json"])
    }

    func testUnsupportedModelType() throws {
        try editConfig { $0["model_type"] = "llama" }
        assertFormatError(try Checkpoint(directory: model), kind: .unsupported, path: "config.json", ["model_type", "llama", "not supported"])
    }

    func testUnsupportedActivation() throws {
        try editConfig { $0["hidden_act"] = "swiglu" }
        assertFormatError(try Checkpoint(directory: model), kind: .unsupported, path: "config.json", ["hidden_act", "swiglu", "not supported"])
    }

    /// Fields of the wrong JSON type are refused by name, never silently defaulted.
    func testConfigFieldsOfTheWrongTypeAreRefused() throws {
        let pristine = try Data(contentsOf: configURL)
        for (key, value) in [("model_type", 5 as Any), ("hidden_act", ["gelu"] as Any), ("hidden_act", 5 as Any),
                             ("rope_parameters", ["rope_type": 7] as Any)] {
            try pristine.write(to: configURL)
            try editConfig { $0[key] = value }
            assertFormatError(try Checkpoint(directory: model), kind: .malformed, path: "config.json", ["must be a string"])
        }
    }

    /// 1e20 is no model dimension: refused by name instead of wrapping to a negative Int.
    func testHugeConfigNumbersAreRefused() throws {
        try editConfig { $0["max_position_embeddings"] = 1e20 }
        assertFormatError(try Checkpoint(directory: model), kind: .malformed, path: "config.json", ["max_position_embeddings", "too large"])
    }

    /// A context of 5·10⁸ positions is refused by name instead of building rotary tables for it.
    func testHugeContextIsRefused() throws {
        try editConfig { $0["max_position_embeddings"] = 500_000_000 }
        assertFormatError(try Checkpoint(directory: model), kind: .unsupported, path: "config.json", ["max_position_embeddings", "rotary"])
    }

    /// A config claiming 10⁹ layers is checked against the blocks the weights hold, at once.
    func testLayerCountMustMatchTheWeights() throws {
        let layers = try Checkpoint(directory: model).config.numLayers
        for claimed in [1_000_000_000, layers + 1, layers - 1] {
            try editConfig { $0["num_hidden_layers"] = claimed }
            assertFormatError(try Checkpoint(directory: model), kind: .shapeMismatch, path: "model",
                              ["num_hidden_layers = \(claimed)", "\(layers) blocks"])
        }
    }

    func testHiddenSizeNotDivisibleByHeads() throws {
        let original = try Checkpoint(directory: model).config
        try editConfig { $0["num_attention_heads"] = original.hiddenSize + 1 }
        assertFormatError(try Checkpoint(directory: model), kind: .malformed, path: "config.json", ["not divisible", "num_attention_heads"])
    }

    func testRopeScalingRefused() throws {
        try editConfig { $0["rope_scaling"] = ["type": "linear", "factor": 2] }
        assertFormatError(try Checkpoint(directory: model), kind: .unsupported, path: "config.json", ["rope_scaling", "not supported"])
    }

    func testRopeTypeRefused() throws {
        try editConfig { $0["rope_parameters"] = ["rope_type": "yarn", "rope_theta": 10000] }
        assertFormatError(try Checkpoint(directory: model), kind: .unsupported, path: "config.json", ["rope_type", "yarn", "not supported"])
    }

    // MARK: - Directories

    func testEmptyDirectory() throws {
        let empty = scratch.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        assertFormatError(try Checkpoint(directory: empty), kind: .notFound, path: "empty", ["no config.json"])
    }

    func testConfigButNoWeights() throws {
        try FileManager.default.removeItem(at: weights)
        assertFormatError(try Checkpoint(directory: model), kind: .notFound, path: "model", ["no weights found", "config.json"])
    }

    func testNonexistentPath() {
        let missing = scratch.appendingPathComponent("no-such-model")
        assertFormatError(try Checkpoint(directory: missing), kind: .notFound, path: "no-such-model", ["does not exist"])
    }
}
