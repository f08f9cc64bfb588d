import Formats
import Foundation
import XCTest
@testable import NeoX

/// Memory of the real suite's shapes (the committed table), estimated before anything loads: what
/// `run`, `perplexity`/`lambada` and a sweep hold must fit a 24 GiB machine up to pythia-12b, and
/// within 8 GiB when streamed.
final class MemoryEstimateTests: XCTestCase {
    static let gib = 1_073_741_824.0

    /// The block parameter count behind every estimate equals HF's own count of the model's parameters.
    func testBlockParametersMatchHuggingFaceCounts() throws {
        let table = try PythiaSuiteTable.load()
        for size in PythiaSuiteTable.sizes {
            let config = try table.config(size)
            let expected = try XCTUnwrap(table.entries[size]?["parameters"] as? Int, size)
            let d = config.hiddenSize, V = config.vocabSize
            let total = config.numLayers * WeightResidency.blockParameters(config) + 2 * V * d + 2 * d
            XCTAssertEqual(total, expected, "\(size): blocks + embed_in + embed_out + final LayerNorm")
        }
    }

    func testEverySizeFitsStreamedWithinEightGiB() throws {
        let table = try PythiaSuiteTable.load()
        for size in PythiaSuiteTable.sizes {
            let config = try table.config(size)
            let residency = WeightResidency.automatic(config: config)
            // `run` 1×2048 with every resid_post hook kept in memory (no logits, no unembedding).
            let run = try ForwardPlan(config: config, capture: HookFilter("blocks.*.hook_resid_post"))
            let runBytes = NeoXModel.estimatedBytes(config: config, residency: residency, plan: run, batch: 1, length: 2048)
            // perplexity / lambada: one 2048-token window, logits of 2047 positions.
            let scored = try ForwardPlan(config: config, hooks: [], logits: .positions([Array(0..<2047)]))
            let scoredBytes = NeoXModel.estimatedBytes(config: config, residency: residency, plan: scored, batch: 1, length: 2048, observed: true)
            print(String(format: "MEMORY %@: %@, run 1×2048 resid_post %.2f GiB, scored window %.2f GiB, fp32 model %.2f GiB",
                         size, residency.rawValue, runBytes / Self.gib, scoredBytes / Self.gib,
                         WeightMemory(config: config, residency: .resident, unembedding: true).total / Self.gib))
            XCTAssertLessThanOrEqual(runBytes, 8 * Self.gib, "\(size) run")
            XCTAssertLessThanOrEqual(scoredBytes, 8 * Self.gib, "\(size) perplexity/lambada")
            if residency == .streamed {
                XCTAssertEqual(WeightMemory(config: config, residency: .streamed, unembedding: false).blocks,
                               2 * Double(WeightResidency.blockParameters(config)) * 4, size)
            }
        }
        // Resident, pythia-6.9b and 12b do not fit this machine at all: the reason streaming exists.
        let big = try table.config("12b")
        XCTAssertGreaterThan(WeightMemory(config: big, residency: .resident, unembedding: true).total, 24 * Self.gib)
    }
}
