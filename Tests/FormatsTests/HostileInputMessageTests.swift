import Foundation
import TestSupport
import XCTest
@testable import Formats

/// Issue 14's messages: bad JSON and bad names are reported with the file, the position and the
/// reason, never Foundation's bare "The data is not in the correct format".
final class HostileInputMessageTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory("neox-hostile") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    private func file(_ name: String, _ bytes: Data) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try bytes.write(to: url)
        return url
    }

    /// A malformed safetensors header names the byte where the JSON goes wrong (file offset: the
    /// header starts at byte 8) or says it ends early.
    func testMalformedSafetensorsHeaderGivesPositionAndReason() throws {
        let header = Data(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},, }"#.utf8)
        var bytes = Data()
        var length = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }
        bytes.append(header)
        bytes.append(Data(count: 4))
        let url = try file("model.safetensors", bytes)
        assertFormatError(try SafeTensors.read(url), kind: .malformed, path: "model.safetensors",
                          ["malformed safetensors JSON header", "at byte 69", "bytes 8..<"])   // the second comma: header offset 61 + 8
        XCTAssertThrowsError(try SafeTensors.read(url)) { error in
            XCTAssertFalse("\(error)".contains("not in the correct format"), "\(error)")
        }
        let truncated = Data(#"{"a": {"dtype": "F32""#.utf8)
        var short = Data()
        var shortLength = UInt64(truncated.count).littleEndian
        withUnsafeBytes(of: &shortLength) { short.append(contentsOf: $0) }
        short.append(truncated)
        assertFormatError(try SafeTensors.read(try file("short.safetensors", short)), kind: .malformed, ["ends before it is complete"])
    }

    /// config.json and the shard index say where their JSON breaks too.
    func testMalformedConfigAndIndexJSONGivePosition() throws {
        let config = try file("config.json", Data(#"{"hidden_size": 64 "num_attention_heads": 4}"#.utf8))
        assertFormatError(try NeoXConfig.load(contentsOf: config), kind: .malformed, path: "config.json", ["invalid JSON value at byte"])
        let index = try file("model.safetensors.index.json", Data(#"{"weight_map": {"a": "#.utf8))
        assertFormatError(try Checkpoint.readShardIndex(index), kind: .malformed, path: "model.safetensors.index.json",
                          ["shard index JSON", "ends before it is complete"])
    }

    /// A shard named "" or "." (or "..") is refused where it is read, naming the tensor, instead of
    /// failing later with "…/model: is a directory".
    func testEmptyOrDotShardNamesAreRefusedByTensor() throws {
        for name in ["", ".", ".."] {
            let index = try file("model.safetensors.index.json",
                                 JSONSerialization.data(withJSONObject: ["weight_map": ["gpt_neox.embed_in.weight": name]]))
            assertFormatError(try Checkpoint.readShardIndex(index), kind: .malformed, path: "model.safetensors.index.json",
                              ["gpt_neox.embed_in.weight", "not a file name"])
        }
    }

    /// eos_token_id of the wrong type is refused by name (generation would otherwise never stop, or
    /// stop at a token nobody chose); null, an id and a list of ids are accepted.
    func testEOSTokenIDOfTheWrongTypeIsRefused() throws {
        let base: [String: Any] = ["model_type": "gpt_neox", "vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "intermediate_size": 64]
        func load(_ eos: Any?) throws -> NeoXConfig {
            var json = base
            if let eos { json["eos_token_id"] = eos }
            return try NeoXConfig(json: json, file: scratch.appendingPathComponent("config.json"))
        }
        XCTAssertNil(try load(nil).eosTokenID)
        XCTAssertNil(try load(NSNull()).eosTokenID)
        XCTAssertEqual(try load(0).eosTokenID, 0)
        XCTAssertEqual(try load([2, 3]).eosTokenID, 2)
        for bad in ["0" as Any, 1.5 as Any, true as Any, -1 as Any, ["x"] as Any] {
            assertFormatError(try load(bad), kind: .malformed, path: "config.json", ["eos_token_id"])
        }
    }
}
