import Formats
import Foundation
import XCTest
@testable import NeoX

/// The typed library surface a researcher's own package uses: hook points, the activation cache,
/// forward plans, per-head weight views.
final class LibraryAPITests: XCTestCase {
    let dir = ForwardFixtures.root.appendingPathComponent("parallel_erf_r025")
    let sequentialDir = ForwardFixtures.root.appendingPathComponent("sequential_tanh_r100")

    func tokens() throws -> [[Int32]] { try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt")) }

    func testHookPointNamesRoundTrip() throws {
        let config = try NeoXModel(directory: sequentialDir).config
        let points = HookPoint.all(for: config)
        XCTAssertEqual(points, points.sorted(), "all(for:) is in production order")
        for point in points { XCTAssertEqual(HookPoint(name: point.name), point, point.name) }
        XCTAssertEqual(HookPoint.residPost(3).name, "blocks.3.hook_resid_post")
        XCTAssertEqual(HookPoint(name: "blocks.3.hook_resid_post"), .block(3, .residPost))
        for bad in ["blocks.03.hook_resid_post", "blocks.-1.hook_resid_post", "blocks.3.hook_nope", "blocks.3",
                    "ln_final.hook_nope", "blocks.3.attn.hook_resid_post", "", "blocks.3.hook_resid_post.x", "blocks.3.attn.hook_z.x"] {
            XCTAssertNil(HookPoint(name: bad), bad)
        }
        XCTAssertLessThan(HookPoint.residPost(11), .lnFinalNormalized)
        XCTAssertLessThan(HookPoint.attnOut(2), .residMid(2))
    }

    func testActivationCacheIndexesLikeTransformerLens() throws {
        let model = try NeoXModel(directory: dir)
        let cache = try model.forward(tokens: tokens(), capture: HookFilter("blocks.1.hook_*,logits")).activations
        let byPoint = try XCTUnwrap(cache[.residPost(1)])
        XCTAssertEqual(cache[.residPost, layer: 1], byPoint)
        XCTAssertEqual(cache["blocks.1.hook_resid_post"], byPoint)
        XCTAssertNil(cache[.residPost, layer: 0])
        XCTAssertEqual(cache.names, ["blocks.1.hook_resid_pre", "blocks.1.hook_attn_out", "blocks.1.hook_mlp_out",
                                     "blocks.1.hook_resid_post", "logits"])
        XCTAssertEqual(Set(cache.byName.keys), Set(cache.names))
        XCTAssertEqual(cache.byteCount, cache.points.reduce(0) { $0 + cache[$1]!.data.count * 4 })
    }

    func testPlanDecidesHowFarToRunAndWhatToLoad() throws {
        let config = try NeoXModel(directory: dir).config
        let partial = try ForwardPlan(config: config, capture: HookFilter("blocks.1.hook_attn_out"))
        XCTAssertEqual(partial.layers, 2)
        XCTAssertFalse(partial.runsFinalNorm)
        XCTAssertFalse(partial.needsUnembedding)
        let final = try ForwardPlan(config: config, capture: HookFilter("ln_final.*"))
        XCTAssertEqual(final.layers, config.numLayers)
        XCTAssertTrue(final.runsFinalNorm)
        XCTAssertFalse(final.needsUnembedding)
        XCTAssertTrue(try ForwardPlan(config: config, capture: .none, logits: .positions([[0]])).needsUnembedding)
        XCTAssertTrue(try ForwardPlan(config: config, capture: .none).isEmpty)

        // Loading by plan reads only what the plan runs, and the pass agrees with a full model's.
        let checkpoint = try Checkpoint(directory: dir)
        let small = try NeoXModel(checkpoint: checkpoint, plan: partial)
        XCTAssertEqual(small.loadedLayers, 2)
        XCTAssertFalse(small.hasUnembedding)
        let full = try NeoXModel(checkpoint: checkpoint)
        XCTAssertEqual(try small.forward(tokens: tokens(), plan: partial).activations,
                       try full.forward(tokens: tokens(), plan: partial).activations)
    }

    func testEveryPatternMustMatchAHook() throws {
        let config = try NeoXModel(directory: dir).config
        XCTAssertThrowsError(try ForwardPlan(config: config, capture: HookFilter("blocks.*.hook_resid_post,blocks.*.hook_atn_out"))) {
            XCTAssertEqual(($0 as? NeoXError)?.kind, .unknownHook)
            XCTAssertTrue("\($0)".contains("'blocks.*.hook_atn_out'"), "\($0)")
        }
        XCTAssertThrowsError(try ForwardPlan(config: config, hooks: [.residPost(config.numLayers)])) {
            XCTAssertEqual(($0 as? NeoXError)?.kind, .unknownHook)
        }
        XCTAssertEqual(HookFilter("blocks.0.*, nothing.here").unmatchedPatterns(in: HookPoint.all(for: config)), ["nothing.here"])
    }

    /// The logits hook and a positions request together: both are served (the hook used to win).
    func testLogitsHookWithPositionRequestReturnsBoth() throws {
        let model = try NeoXModel(directory: dir)
        let toks = try tokens()
        let (T, V) = (toks[0].count, model.config.vocabSize)
        let result = try model.forward(tokens: toks, capture: HookFilter("logits"), logits: .positions([[T - 1, 2], [0]]))
        let hook = try XCTUnwrap(result.activations[.logits])
        let picked = try XCTUnwrap(result.logits, "positions must be returned alongside the logits hook")
        XCTAssertEqual(picked.shape, [3, V])
        for (r, (b, t)) in [(0, T - 1), (0, 2), (1, 0)].enumerated() {
            XCTAssertEqual(Array(picked.data[(r * V)..<((r + 1) * V)]), Array(hook.data[((b * T + t) * V)..<((b * T + t + 1) * V)]))
        }
    }

    /// Per-head views are slices of the fused tensors exactly where HF's forward reads them.
    func testAttentionHeadViewsSliceTheFusedTensors() throws {
        let model = try NeoXModel(directory: dir)
        let config = model.config
        let d = config.hiddenSize, dh = config.headDim
        let heads = model.weights.attentionHeads(layer: 1)
        let layer = model.weights.layers[1]
        XCTAssertEqual(heads.numHeads, config.numHeads)
        for head in 0..<config.numHeads {
            for projection in AttentionHeadWeights.Projection.allCases {
                let w = heads.weight(projection, head: head)
                XCTAssertEqual(w.count, dh * d)
                let first = 3 * dh * head + projection.rawValue * dh
                XCTAssertEqual(w, Array(layer.qkvWeight[(first * d)..<((first + dh) * d)]))
                XCTAssertEqual(heads.bias(projection, head: head), layer.qkvBias.map { Array($0[first..<(first + dh)]) })
            }
            let o = heads.output(head: head)
            XCTAssertEqual(o.count, d * dh)
            for r in 0..<d { for c in 0..<dh { XCTAssertEqual(o[r * dh + c], layer.denseWeight[r * d + head * dh + c]) } }
        }
        // Reassembling the heads' value and output slices reproduces the fused matrices.
        var dense = [Float](repeating: 0, count: d * d)
        for head in 0..<config.numHeads {
            let o = heads.output(head: head)
            for r in 0..<d { for c in 0..<dh { dense[r * d + head * dh + c] = o[r * dh + c] } }
        }
        XCTAssertEqual(dense, layer.denseWeight)
    }

    /// A valid but huge batch is refused up front with the memory it would need, never an
    /// allocation abort; the estimate is what the pass allocates.
    func testHugeBatchIsRefusedWithItsMemoryNeed() throws {
        let model = try NeoXModel(directory: dir)
        let T = model.config.maxPositionEmbeddings
        let plan = try ForwardPlan(config: model.config, capture: .all, logits: .all)
        let perSequence = model.workingBytes(plan: plan, batch: 1, length: T)
        XCTAssertGreaterThan(perSequence, 0)
        let tooMany = Int(Double(ProcessInfo.processInfo.physicalMemory) / perSequence) + 1
        let batch = [[Int32]](repeating: [Int32](repeating: 1, count: T), count: tooMany)
        XCTAssertThrowsError(try model.forward(tokens: batch, plan: plan)) { error in
            XCTAssertEqual((error as? NeoXError)?.kind, .invalidRequest)
            XCTAssertTrue("\(error)".contains("GiB"), "\(error)")
        }
    }
}
