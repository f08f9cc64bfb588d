import Foundation
import TestSupport
import XCTest
@testable import Formats

/// Every pythia-mini step, in all three layouts real Pythia revisions use, loads to exactly the tensors
/// torch / safetensors read (expectations from Tests/Fixtures/generate_checkpoints.py).
final class CheckpointPythiaTests: XCTestCase {
    func testEveryStepMatchesReference() throws {
        try CheckpointFixtures.requirePythiaMini()
        let steps = try XCTUnwrap(CheckpointFixtures.json("pythia-mini.json")["steps"] as? [String: [String: Any]])
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: CheckpointFixtures.pythiaMini.path)
            .filter { $0.hasPrefix("step") }
        XCTAssertEqual(Set(steps.keys), Set(onDisk), "the fixture covers every step on disk")
        var layouts: Set<String> = []

        for (step, record) in steps.sorted(by: { $0.key < $1.key }) {
            let directory = CheckpointFixtures.pythiaMini.appendingPathComponent(step)
            let checkpoint = try Checkpoint(directory: directory)
            let fileTensors = try CheckpointFixtures.tensors(record["tensors"])
            let modelNames = try XCTUnwrap(record["model_names"] as? [String])
            let layout = try XCTUnwrap(record["layout"] as? String)
            layouts.insert(layout)
            XCTAssert(String(describing: checkpoint.layout).isEmpty == false)
            switch (layout, checkpoint.layout) {
            case ("safetensors", .safetensors), ("pytorchBin", .pytorchBin): break
            case ("shardedSafetensors", .shardedSafetensors(let n)):
                XCTAssertEqual(n, (record["shards"] as? [String])?.count, step)
            default: XCTFail("\(step): layout \(checkpoint.layout), reference says \(layout)")
            }

            // The checkpoint exposes exactly the model's tensors: old buffers are gone.
            XCTAssertEqual(checkpoint.tensorNames, modelNames.sorted(), step)
            try assertEntries(checkpoint.entries, match: fileTensors.filter { modelNames.contains($0.key) }, step)

            // Every weight is reachable through the shape-checked API the forward pass uses.
            for name in modelNames {
                let want = try XCTUnwrap(fileTensors[name])
                let values = try checkpoint.tensor(name, shape: want.shape)
                XCTAssertEqual(values.count, want.shape.reduce(1, *), "\(step) \(name)")
            }
        }
        XCTAssertEqual(layouts, ["safetensors", "pytorchBin", "shardedSafetensors"], "all three layouts covered")
    }

    /// The raw .bin reader returns everything torch.load returns, buffers included, bit for bit.
    func testRawTorchFileMatchesTorchLoad() throws {
        try CheckpointFixtures.requirePythiaMini()
        let steps = try XCTUnwrap(CheckpointFixtures.json("pythia-mini.json")["steps"] as? [String: [String: Any]])
        let record = try XCTUnwrap(steps.first { $0.value["layout"] as? String == "pytorchBin" })
        let file = CheckpointFixtures.pythiaMini.appendingPathComponent(record.key).appendingPathComponent("pytorch_model.bin")
        let entries = try TorchCheckpoint.read(file)
        let expected = try CheckpointFixtures.tensors(record.value["tensors"])
        try assertEntries(entries, match: expected, "raw \(record.key)")
        let modelNames = Set(try XCTUnwrap(record.value["model_names"] as? [String]))
        for name in Set(expected.keys).subtracting(modelNames) {
            XCTAssert(Checkpoint.isBuffer(name), "\(name) is in the file but not a model tensor, so it must be a known buffer")
        }
    }

    /// Steps in different layouts agree on every tensor's name and shape (they come from one model).
    func testLayoutsAgreeOnShapes() throws {
        try CheckpointFixtures.requirePythiaMini()
        let steps = try XCTUnwrap(CheckpointFixtures.json("pythia-mini.json")["steps"] as? [String: [String: Any]])
        var shapes: [String: [Int]]?
        for step in steps.keys.sorted() {
            let checkpoint = try Checkpoint(directory: CheckpointFixtures.pythiaMini.appendingPathComponent(step))
            let these = checkpoint.entries.mapValues(\.shape)
            if let shapes { XCTAssertEqual(these, shapes, step) } else { shapes = these }
        }
    }
}
