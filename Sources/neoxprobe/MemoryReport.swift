import Formats
import Foundation
import NeoX

/// What a command will hold in memory, stated (and checked against the machine) before it loads
/// a model: the weights as their residency keeps them plus one pass's working buffers. The
/// checkpoint itself is memory-mapped: its pages are page cache, which the kernel reclaims.
enum MemoryReport {
    static func gib(_ bytes: Double) -> String { String(format: "%.2f GiB", bytes / 1_073_741_824) }

    /// Refuses a pass that cannot fit; returns the line `run` prints.
    static func require(config: NeoXConfig, residency: WeightResidency, plan: ForwardPlan, batch B: Int, length T: Int,
                        directory: URL) throws -> String {
        let weights = WeightMemory(config: config, residency: residency, layers: plan.layers, unembedding: plan.needsUnembedding)
        let working = NeoXModel.workingBytes(config: config, plan: plan, batch: B, length: T)
        let line = "about \(gib(weights.total + working)): weights \(gib(weights.total)) (\(residency.rawValue)"
            + "\(residency == .streamed ? ", two fp32 block buffers" : "")), pass \(gib(working)) for \(B)×\(T) tokens"
        try check(weights.total + working, what: "running \(directory.path) on \(B)×\(T) tokens (\(line))",
                  advice: working > weights.total || residency == .streamed
                      ? "ask for fewer hooks (attention scores and patterns are B×H×T×T per layer), fewer tokens or a smaller batch"
                      : "use --weights streamed or a smaller batch")
        return line
    }

    /// Refuses weights that cannot fit (the evaluation commands size their passes themselves).
    static func requireWeights(config: NeoXConfig, residency: WeightResidency, unembedding: Bool, directory: URL) throws {
        let weights = WeightMemory(config: config, residency: residency, unembedding: unembedding)
        try check(weights.total, what: "loading \(directory.path) with \(residency.rawValue) weights (\(gib(weights.total)))",
                  advice: "use --weights streamed")
    }

    private static func check(_ bytes: Double, what: String, advice: String) throws {
        let available = Double(ProcessInfo.processInfo.physicalMemory)
        guard bytes <= 0.9 * available else {
            throw CommandFailure("\(what) needs more than 90% of this machine's \(gib(available)) of memory; \(advice)")
        }
    }
}
