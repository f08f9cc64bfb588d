import Formats
import Foundation
import NeoX

/// How a sweep gets the CKA reference's activations, decided before anything is written, and the
/// plan printed at the start of every sweep: tokens, sites, checkpoints, and what disk and memory
/// each way would take.
///
/// (a) `cache`: the reference runs first and its activations (tokens × sites × d fp32) go to
/// `RESULTS/.reference/`; chosen when that fits `--cache-budget` and the free disk.
/// (b) `recompute`: no activation file; next to each checkpoint's forward pass the reference's runs
/// on the same batch in lockstep (its observer hands each site over as the checkpoint reaches it),
/// so memory holds one site of one batch. One more forward pass per checkpoint.
/// Both feed the same fp32 rows to the same accumulators in the same order: identical CKA.
struct SweepCKAPlan: Sendable {
    enum Path: String, Sendable { case cache, recompute }

    let tokenCount: Int
    let siteCount: Int
    let dimension: Int
    /// Checkpoints whose CKA the run computes.
    let checkpoints: Int
    /// Bytes of the reference activation cache (nil: more than Int.max).
    let cacheBytes: Int?
    let budget: Int
    let freeDisk: Int?
    let path: Path
    let reason: String
    let residency: WeightResidency
    /// Estimated resident bytes of a checkpoint's measurement with each path.
    let memoryCached: Double
    let memoryRecompute: Double

    init(config: NeoXConfig, sites: Int, tokenCount: Int, sequenceLength: Int, tokensPerBatch: Int, checkpoints: Int,
         options: SweepOptions, results: URL) {
        self.tokenCount = tokenCount
        siteCount = sites
        dimension = config.hiddenSize
        self.checkpoints = checkpoints
        budget = options.cacheBudget
        cacheBytes = SweepMemory.product([tokenCount, config.hiddenSize, sites, MemoryLayout<Float>.size])
        freeDisk = Self.freeBytes(near: results)
        residency = options.residency ?? WeightResidency.automatic(config: config)
        let unembedding = options.probes.contains { $0 == .perplexity || $0 == .lambada || $0 == .gradients || $0.generates }
        let weights = WeightMemory(config: config, residency: residency, unembedding: unembedding).total
        let referenceWeights = WeightMemory(config: config, residency: residency, unembedding: false).total
        let T = max(1, sequenceLength), B = max(1, min(tokenCount / T, max(1, tokensPerBatch / T)))
        let passPlan = try? ForwardPlan(config: config, hooks: [])
        let working = passPlan.map { NeoXModel.workingBytes(config: config, plan: $0, batch: B, length: T, observed: true) } ?? 0
        let accumulators = Self.accumulatorBytes(dimension: config.hiddenSize, sites: sites, allTokensInOnePass: tokenCount <= B * T)
        // Current model + the next one loading: a second fp32 model when resident; when streamed only
        // its fp32 unembedding (block buffers are pooled and shared, its tensors are page cache).
        let next = residency == .resident ? weights : WeightMemory(config: config, residency: .streamed, unembedding: unembedding).unembedding
        let models = weights + next
        memoryCached = models + working + accumulators
        memoryRecompute = memoryCached + referenceWeights + working + Double(B * T * config.hiddenSize * 4)
        if let cacheBytes, cacheBytes <= budget, freeDisk.map({ cacheBytes <= $0 / 2 }) ?? true {
            path = .cache
            reason = "the cache (\(Self.size(cacheBytes))) fits --cache-budget \(Self.size(budget))"
        } else if let cacheBytes, cacheBytes <= budget {
            path = .recompute
            reason = "the cache (\(Self.size(cacheBytes))) fits --cache-budget but not half of the \(Self.size(freeDisk ?? 0)) of free disk"
        } else {
            path = .recompute
            reason = "the cache (\(cacheBytes.map(Self.size) ?? "more than \(Int.max) bytes")) exceeds --cache-budget \(Self.size(budget))"
        }
    }

    /// The CKA accumulators: per site X̃ᵀX̃, ỸᵀỸ, ỸᵀX̃ in float64 (3d²) plus two 256-row chunk
    /// buffers; alive for every site at once only when the tokens take more than one pass.
    static func accumulatorBytes(dimension d: Int, sites: Int, allTokensInOnePass: Bool) -> Double {
        let perSite = Double(3 * d * d + 2 * 256 * d) * 8
        return perSite * Double(allTokensInOnePass ? 1 : sites)
    }

    /// The plan as printed before the sweep starts.
    var lines: [String] {
        let cache = cacheBytes.map(Self.size) ?? "more than \(Int.max) bytes"
        return [
            "CKA: \(tokenCount) tokens × \(siteCount) sites of width \(dimension), \(checkpoints) checkpoint\(checkpoints == 1 ? "" : "s") to compare; weights \(residency.rawValue)",
            "  (a) cache the reference's activations: \(cache) on disk (budget \(Self.size(budget)), free \(freeDisk.map(Self.size) ?? "unknown")), memory about \(Self.size(memoryCached))",
            "  (b) recompute the reference next to each checkpoint: no disk, memory about \(Self.size(memoryRecompute)), one more forward pass per checkpoint",
            "  chosen: \(path == .cache ? "(a) cache" : "(b) recompute"): \(reason)",
        ]
    }

    static func size(_ bytes: Int) -> String { size(Double(bytes)) }

    static func size(_ bytes: Double) -> String {
        bytes >= 1_073_741_824 ? String(format: "%.2f GiB", bytes / 1_073_741_824) : String(format: "%.1f MiB", bytes / 1_048_576)
    }

    static func freeBytes(near url: URL) -> Int? {
        var probe = url.standardizedFileURL
        while !FileManager.default.fileExists(atPath: probe.path) && probe.path != "/" { probe.deleteLastPathComponent() }
        guard let attributes = try? FileManager.default.attributesOfFileSystem(forPath: probe.path),
              let free = attributes[.systemFreeSize] as? NSNumber else { return nil }
        return free.intValue
    }
}
