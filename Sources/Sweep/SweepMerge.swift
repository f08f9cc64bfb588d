import Formats
import Foundation
import Results

/// What `SweepMerge.merge` did.
public struct SweepMergeSummary: Sendable {
    /// Per-checkpoint files copied into the output.
    public var copiedFiles: Int
    /// Steps of the merged selection (`steps_selected`).
    public var selectedSteps: [Int]
    /// (step, probe) pairs of the merged selection with no result in any source.
    public var missing: [(step: Int, probe: String)]
    public var metricsRowCount: Int
    public var complete: Bool { missing.isEmpty }
}

/// `neoxprobe merge`: puts sweep results directories back together, the shards of a sharded
/// sweep (`SweepShard`) or sweeps of different steps or probes on the same suite and data.
///
/// Every source's `run.json` must agree with the others on each probe's settings and on the
/// settings probes share (the rule a sweep extending a directory follows). The verified
/// per-checkpoint files (`SweepIntegrity`) and `checkpoint.json` of every step are copied into
/// the output (atomically; one already there must be identical), then `metrics.csv` and
/// `run.json` are rebuilt from the files by the same code a sweep uses, so the merge of the
/// shards of a sweep is byte for byte the single-machine sweep's. The output may be one of the
/// sources (a shared results directory the shards wrote into: nothing is copied, the two files
/// are rebuilt). A source some sweep is still writing into (a checkpoint lock is held) is refused,
/// naming the holder.
public enum SweepMerge {
    public static func merge(sources: [URL], into output: URL) throws -> SweepMergeSummary {
        guard !sources.isEmpty else { throw SweepError(.invalidOption, "no results directories to merge") }
        let output = output.standardizedFileURL
        let target = SweepResults(directory: output)
        var descriptions: [(url: URL, run: [String: Any])] = []
        var all = sources.map(\.standardizedFileURL)
        if !all.contains(output), FileManager.default.fileExists(atPath: target.runURL.path) { all.append(output) }
        for source in all {
            let results = SweepResults(directory: source)
            guard let run = try SweepResults.previousRun(in: source) else {
                throw SweepError(.notFound, "\(source.path) is not a sweep results directory (it has no run.json)")
            }
            guard run["probe_options"] is [String: [String: String]] else {
                throw SweepError(.conflictingResults, "\(results.runURL.path) was written by an earlier neoxprobe (no per-probe options); it cannot be merged")
            }
            if let holder = results.activeHolders().first {
                throw SweepError(.conflictingResults, "\(source.path) is still being written: a lock is held by \(holder); merge once that sweep has finished")
            }
            descriptions.append((source, run))
        }
        if !FileManager.default.fileExists(atPath: output.path) || !all.contains(output) {
            try SweepResults.check(output, probeCanonical: [:], canonical: [:])
        }

        // One description: the first, with the others folded in after their settings are checked.
        var merged = descriptions[0].run
        for (url, run) in descriptions.dropFirst() {
            try checkCompatible(merged, run, source: url, against: descriptions[0].url)
            merged = SweepResults.union(run, merged)
        }

        try target.create()
        var copied = 0
        for (source, _) in descriptions where source != output {
            copied += try copySteps(from: SweepResults(directory: source), into: target)
        }
        let probes = (merged["probes"] as? [String]) ?? []
        let selected = ((merged["suite"] as? [String: Any])?["steps_selected"] as? [Int]) ?? []
        try target.withDirectoryLock {
            let identical = target.identicalPairs()
            try target.writeMetrics(identical: identical)
            try target.writeRun(merged, identical: identical)
        }
        var missing: [(step: Int, probe: String)] = []
        for step in selected {
            let done = Set(SweepResults.probesDone(in: target.stepDirectory(step)).map(\.rawValue))
            for probe in probes where !done.contains(probe) { missing.append((step, probe)) }
        }
        let rows = try MetricsCSV.read(contentsOf: target.metricsURL).count
        return SweepMergeSummary(copiedFiles: copied, selectedSteps: selected, missing: missing, metricsRowCount: rows)
    }

    /// Two run descriptions may be merged when they measured the same suite and every probe they
    /// share, and every setting their probes share, agree.
    private static func checkCompatible(_ a: [String: Any], _ b: [String: Any], source: URL, against first: URL) throws {
        var changes: [String] = []
        let rootA = (a["suite"] as? [String: Any])?["root"] as? String, rootB = (b["suite"] as? [String: Any])?["root"] as? String
        if rootA != rootB { changes.append("suite: \(rootA ?? "?") vs \(rootB ?? "?")") }
        let optionsA = a["probe_options"] as? [String: [String: String]] ?? [:], optionsB = b["probe_options"] as? [String: [String: String]] ?? [:]
        for probe in Set(optionsA.keys).intersection(optionsB.keys).sorted() where optionsA[probe] != optionsB[probe] {
            let keys = Set(optionsA[probe]!.keys).union(optionsB[probe]!.keys).sorted().filter { optionsA[probe]![$0] != optionsB[probe]![$0] }
            changes.append("\(probe): " + keys.map { "\($0) \(optionsA[probe]![$0] ?? "(unset)") vs \(optionsB[probe]![$0] ?? "(unset)")" }.joined(separator: ", "))
        }
        let flatA = a["options"] as? [String: String] ?? [:], flatB = b["options"] as? [String: String] ?? [:]
        for key in Set(flatA.keys).intersection(flatB.keys).sorted() where flatA[key] != flatB[key] {
            changes.append("\(key): \(flatA[key]!) vs \(flatB[key]!)")
        }
        guard changes.isEmpty else {
            throw SweepError(.conflictingResults, "\(source.path) and \(first.path) were measured with different settings, refusing to merge: "
                + changes.joined(separator: "; "))
        }
    }

    /// Copies the step folders' files `target` lacks; returns how many. A probe file is taken only
    /// when verified (with its sidecar); one the target has already must be the same bytes.
    private static func copySteps(from source: SweepResults, into target: SweepResults) throws -> Int {
        let fileManager = FileManager.default
        var copied = 0
        for (step, folder) in source.stepFolders() {
            let destination = target.stepDirectory(step)
            let done = Set(SweepResults.probesDone(in: folder).map(\.fileName))
            let names = ((try? fileManager.contentsOfDirectory(atPath: folder.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            for name in names where !name.hasSuffix(".csv.sum") {
                let isProbeFile = SweepProbe.allCases.contains { $0.fileName == name }
                // Probe files travel only when verified, each with its sidecar.
                if isProbeFile && !done.contains(name) { continue }
                let from = folder.appendingPathComponent(name), to = destination.appendingPathComponent(name)
                guard let data = fileManager.contents(atPath: from.path) else { continue }
                if let existing = fileManager.contents(atPath: to.path), !isProbeFile || SweepIntegrity.state(of: to) == .verified {
                    if existing == data { continue }
                    if name == "checkpoint.json",
                       SweepResults.checkpointRecord(in: folder)?["content_hash"] as? String
                           == SweepResults.checkpointRecord(in: destination)?["content_hash"] as? String { continue }
                    throw SweepError(.conflictingResults, "step \(step): \(from.path) differs from \(to.path); the sources disagree about it, refusing to merge")
                }
                try fileManager.createDirectory(at: destination, withIntermediateDirectories: true)
                // The sidecar after its CSV, so a crash leaves an unverified file, never a wrong one.
                try AtomicFile.write(data, to: to)
                if isProbeFile, let sum = fileManager.contents(atPath: SweepIntegrity.sumURL(from).path) {
                    try AtomicFile.write(sum, to: SweepIntegrity.sumURL(to))
                }
                copied += 1
            }
        }
        return copied
    }
}
