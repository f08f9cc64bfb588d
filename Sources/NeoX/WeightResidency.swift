import Formats
import Foundation

/// Where a model's block weights live while it runs.
///
/// - `resident`: every block widened to fp32 once, at load (fastest for small models: no work per pass).
/// - `streamed`: blocks stay in the checkpoint's dtype in the memory map; each block is widened to
///   fp32 just before it runs, into one of two buffers reused across blocks and passes, the next
///   block widening on another thread while the current one computes. Resident memory is then two
///   fp32 blocks plus activations, whatever the model's size.
///
/// Both run the same kernels on the same fp32 values in the same order, so results are bit-identical.
public enum WeightResidency: String, Sendable, CaseIterable {
    case resident, streamed

    /// Models whose fp32 block weights exceed this are streamed by `automatic` (2 GiB: pythia-410m
    /// and smaller stay resident; a sweep holds two models, the current one and the next, loading).
    public static let residentLimitBytes: Double = 2 * 1_073_741_824

    /// Resident when the fp32 blocks of `layers` blocks fit `residentLimitBytes`, else streamed.
    public static func automatic(config: NeoXConfig, layers: Int? = nil) -> WeightResidency {
        let blocks = Double(layers ?? config.numLayers) * Double(blockParameters(config))
        return blocks * 4 <= residentLimitBytes ? .resident : .streamed
    }

    /// Parameters of one block (weights and biases of both LayerNorms, QKV, dense, MLP).
    public static func blockParameters(_ config: NeoXConfig) -> Int {
        let d = config.hiddenSize, ff = config.intermediateSize
        let attentionBias = config.attentionBias ? 4 * d : 0
        return 4 * d + 3 * d * d + d * d + attentionBias + 2 * d * ff + ff + d
    }
}

/// What a model holds in memory besides one pass's working buffers, in bytes (see `NeoXModel.estimatedBytes`).
public struct WeightMemory: Sendable, Equatable {
    /// fp32 block weights held for the whole run: all blocks (resident) or two block buffers (streamed).
    public var blocks: Double
    /// The fp32 unembedding (`embed_out`), when loaded; 0 otherwise.
    public var unembedding: Double
    /// Final LayerNorm and the rotary tables.
    public var other: Double

    public var total: Double { blocks + unembedding + other }

    public init(config: NeoXConfig, residency: WeightResidency, layers: Int? = nil, unembedding: Bool) {
        let perBlock = Double(WeightResidency.blockParameters(config)) * 4
        let count = Double(layers ?? config.numLayers)
        blocks = residency == .resident ? count * perBlock : min(2, count) * perBlock
        self.unembedding = unembedding ? Double(config.vocabSize) * Double(config.hiddenSize) * 4 : 0
        other = Double(2 * config.hiddenSize) * 4 + Double(config.maxPositionEmbeddings) * Double(config.rotaryDims) * 4
    }
}

extension NeoXModel {
    /// Bytes a pass of `plan` over B×T tokens allocates: the working buffers, the captured
    /// activations (unless an observer streams them) and the logits.
    public static func workingBytes(config: NeoXConfig, plan: ForwardPlan, batch B: Int, length T: Int, observed: Bool = false) -> Double {
        let N = Double(B) * Double(T), d = Double(config.hiddenSize), ff = Double(config.intermediateSize)
        let V = Double(config.vocabSize), H = Double(config.numHeads)
        var floats = N * (8 * d + ff)                                        // x, ln, qkv(3d), heads, attnOut, mlpOut, hidden
        func size(_ point: HookPoint) -> Double { point.shape(config: config, batch: B, length: T).reduce(1.0) { $0 * Double($1) } }
        if !observed { floats += plan.hooks.filter { $0 != .logits }.reduce(0) { $0 + size($1) } }
        let sites = Set(plan.hooks.compactMap { point -> BlockHook? in if case .block(_, let site) = point { return site } else { return nil } })
        if sites.contains(.attnScores) || sites.contains(.pattern) { floats += Double(B) * H * Double(T) * Double(T) }   // one block's matrices
        if sites.contains(.result) { floats += N * H * d }
        if !sites.isDisjoint(with: [.q, .k, .v, .rotQ, .rotK]) { floats += N * d }
        if plan.hooks.contains(.logits) || plan.logits == .all { floats += N * V * (observed ? 1 : 2) }
        if case .positions(let lists) = plan.logits { floats += Double(lists.reduce(0) { $0 + $1.count }) * (V + d) }
        return floats * Double(MemoryLayout<Float>.size)
    }

    /// Everything a job of one pass of `plan` over B×T tokens holds, estimated before loading
    /// anything: the weights as `residency` keeps them plus the pass's working memory. The
    /// checkpoint's own pages (memory-mapped) are page cache, not counted.
    public static func estimatedBytes(config: NeoXConfig, residency: WeightResidency, plan: ForwardPlan,
                                      batch B: Int, length T: Int, observed: Bool = false) -> Double {
        WeightMemory(config: config, residency: residency, layers: plan.layers, unembedding: plan.needsUnembedding).total
            + workingBytes(config: config, plan: plan, batch: B, length: T, observed: observed)
    }

    /// How this model holds its blocks and what they cost.
    public var weightMemory: WeightMemory {
        WeightMemory(config: config, residency: weights.residency, layers: loadedLayers, unembedding: hasUnembedding)
    }
}
