import ArgumentParser
import Foundation
import Sweep

/// `neoxprobe merge`: sweep results directories (the shards of a Slurm job array, or sweeps of
/// different steps) into one, with the metrics.csv and run.json a single sweep would write.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge sweep results directories (shards, or sweeps of other steps or probes) into one.",
        discussion: """
        Each DIR is a sweep results directory; all must have measured the same suite with the same settings \
        for the probes they share. The verified per-checkpoint files are copied into --out, and metrics.csv and \
        run.json are rebuilt from them: for the shards of one sweep (`sweep --shard i/n`) they are byte for byte \
        what a single sweep of all the steps writes. --out may be one of the DIRs (a results directory the \
        shards shared). A directory a sweep is still writing into is refused, naming that sweep's host and pid.
        """)

    @Argument(help: ArgumentHelp("Results directories to merge.", valueName: "dir"))
    var directories: [String]

    @Option(name: .long, help: "The merged results directory (created; or one of the DIRs).")
    var out: String

    @Flag(name: .long, help: "Succeed even when some selected step lacks a probe's results (they are listed).")
    var allowIncomplete = false

    func run() throws {
        let summary: SweepMergeSummary
        do {
            summary = try SweepMerge.merge(sources: directories.map { URL(fileURLWithPath: $0) }, into: URL(fileURLWithPath: out))
        } catch let error as SweepError {
            throw CommandFailure(error.description)
        }
        let metrics = URL(fileURLWithPath: out).appendingPathComponent("metrics.csv").path
        let line = "merge: \(directories.count) director\(directories.count == 1 ? "y" : "ies"), \(summary.copiedFiles) files copied, "
            + "\(summary.selectedSteps.count) steps; \(summary.metricsRowCount) rows in \(metrics)"
        if !summary.complete {
            let list = summary.missing.prefix(20).map { "step \($0.step) \($0.probe)" }.joined(separator: ", ")
            let message = "merge: \(summary.missing.count) (step, probe) results of the selection are missing: \(list)"
                + (summary.missing.count > 20 ? ", …" : "")
            guard allowIncomplete else { throw CommandFailure(message + " (rerun the failed shards, or pass --allow-incomplete)") }
            FileHandle.standardError.write(Data((message + "\n").utf8))
        }
        print(line)
    }
}
