import Foundation
import TestSupport
import XCTest
@testable import Formats

/// config.json in the spellings Pythia models come in: Pythia's own (v4: rotary_pct /
/// rotary_emb_base), transformers 4.4x (which adds partial_rotary_factor / rope_theta aliases) and
/// transformers v5 (rope_parameters). All must give the same `NeoXConfig`.
final class ConfigParsingTests: XCTestCase {
    private let source = URL(fileURLWithPath: "/config.json")

    /// Pythia-style configs: the shared pythia-mini one (when present) and the tiny fixture.
    private func v4Configs() throws -> [[String: Any]] {
        var urls = [CheckpointFixtures.url("tiny-safetensors/config.json")]
        let mini = CheckpointFixtures.pythiaMini.appendingPathComponent("step0/config.json")
        if FileManager.default.fileExists(atPath: mini.path) { urls.append(mini) }
        return try urls.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: $0)) as? [String: Any]) }
    }

    private static let ropeKeys = ["rotary_pct", "rotary_emb_base", "partial_rotary_factor", "rope_theta", "rope_scaling"]

    func testV5RopeParametersMatchV4() throws {
        for v4 in try v4Configs() {
            let expected = try NeoXConfig(json: v4, file: source)
            var v5 = v4.filter { !Self.ropeKeys.contains($0.key) }
            v5["rope_parameters"] = ["rope_type": "default",
                                     "rope_theta": try XCTUnwrap(v4["rotary_emb_base"]),
                                     "partial_rotary_factor": try XCTUnwrap(v4["rotary_pct"])]
            XCTAssertEqual(try NeoXConfig(json: v5, file: source), expected)
        }
    }

    func testTopLevelAliasesMatchV4() throws {
        for v4 in try v4Configs() {
            let expected = try NeoXConfig(json: v4, file: source)
            var aliased = v4.filter { !Self.ropeKeys.contains($0.key) }
            aliased["partial_rotary_factor"] = try XCTUnwrap(v4["rotary_pct"])
            aliased["rope_theta"] = try XCTUnwrap(v4["rotary_emb_base"])
            XCTAssertEqual(try NeoXConfig(json: aliased, file: source), expected)
        }
    }

    /// The values come from the file, not defaults: changing one in the file changes the config.
    func testRopeValuesAreRead() throws {
        let v4 = try XCTUnwrap(v4Configs().first)
        let base = try NeoXConfig(json: v4, file: source)
        var v5 = v4.filter { !Self.ropeKeys.contains($0.key) }
        v5["rope_parameters"] = ["rope_theta": base.rotaryBase * 2, "partial_rotary_factor": 1.0]
        let config = try NeoXConfig(json: v5, file: source)
        XCTAssertEqual(config.rotaryBase, base.rotaryBase * 2)
        XCTAssertEqual(config.rotaryPct, 1.0)
        XCTAssertEqual(config.rotaryDims, config.headDim)
    }

    func testRopeParametersMustBeObject() throws {
        var json = try XCTUnwrap(v4Configs().first)
        json["rope_parameters"] = "default"
        assertFormatError(try NeoXConfig(json: json, file: source), kind: .malformed, path: "config.json", ["rope_parameters", "object"])
    }

    /// Through real JSON text, 1 is an integer and `true` is not (Linux Foundation blurs the two).
    func testOneIsAnIntegerAndTrueIsNot() throws {
        var json = try XCTUnwrap(v4Configs().first)
        json["num_attention_heads"] = 1
        json["num_hidden_layers"] = 1
        let text = try JSONSerialization.data(withJSONObject: json)
        let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: text) as? [String: Any])
        let config = try NeoXConfig(json: parsed, file: source)
        XCTAssertEqual(config.numHeads, 1)
        XCTAssertEqual(config.numLayers, 1)

        json["num_hidden_layers"] = true
        let bad = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: json)) as? [String: Any])
        assertFormatError(try NeoXConfig(json: bad, file: source), kind: .malformed, path: "config.json", ["num_hidden_layers", "integer"])
    }
}
