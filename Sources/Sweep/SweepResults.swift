import Formats
import Foundation
import Results

/// The results directory of a sweep (layout in `SweepRunner`): where each file lives, what is
/// there already, and the per-checkpoint writes. Every question about "is this done" is answered
/// from the files alone, so whichever run wrote them, a rerun sees the same state.
struct SweepResults {
    let directory: URL

    var stepsDirectory: URL { directory.appendingPathComponent("steps") }
    var metricsURL: URL { directory.appendingPathComponent("metrics.csv") }
    var runURL: URL { directory.appendingPathComponent("run.json") }
    var referenceDirectory: URL { directory.appendingPathComponent(".reference") }

    func stepDirectory(_ step: Int) -> URL { stepsDirectory.appendingPathComponent(SweepRunner.stepFolder(step)) }

    /// Whether `probe`'s file for `step` is there and agrees with its row count and checksum
    /// (`SweepIntegrity`): the mark that this (checkpoint, probe) is done.
    func hasFile(step: Int, probe: SweepProbe) -> Bool {
        SweepIntegrity.state(of: stepDirectory(step).appendingPathComponent(probe.fileName)) == .verified
    }

    /// The probes whose verified files a step folder holds, in canonical order.
    static func probesDone(in folder: URL) -> [SweepProbe] {
        SweepProbe.allCases.filter { SweepIntegrity.state(of: folder.appendingPathComponent($0.fileName)) == .verified }
    }

    /// Per-checkpoint files present but not trustworthy, as warnings (they are measured again).
    func damagedFiles(steps: [Int]) -> [String] {
        steps.flatMap { step in
            SweepProbe.allCases.compactMap { probe -> String? in
                let url = stepDirectory(step).appendingPathComponent(probe.fileName)
                guard case .damaged(let why) = SweepIntegrity.state(of: url) else { return nil }
                return "sweep: warning: \(url.path): \(why); measuring it again"
            }
        }
    }

    /// A step folder's `checkpoint.json`, nil when absent or unreadable.
    static func checkpointRecord(in folder: URL) -> [String: Any]? {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("checkpoint.json")) else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    /// The content hash recorded for `step`, nil when it has no checkpoint record yet.
    func recordedHash(step: Int) -> String? {
        Self.checkpointRecord(in: stepDirectory(step))?["content_hash"] as? String
    }

    // MARK: - Before a run

    /// The `run.json` of `directory`, nil when there is none. A file that is not a sweep's
    /// `run.json` is an error (never overwritten).
    static func previousRun(in directory: URL) throws -> [String: Any]? {
        let runURL = directory.appendingPathComponent("run.json")
        guard let data = FileManager.default.contents(atPath: runURL.path) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object["fingerprint"] is String else {
            throw SweepError(.conflictingResults, option: .output, "\(runURL.path) is not a sweep run.json; refusing to write into \(directory.path)")
        }
        return object
    }

    /// Checks that `directory` is absent, empty, or a sweep whose probes were measured with the
    /// settings `probeCanonical` gives them; results from different settings are never mixed.
    /// Adding probes or steps to a sweep is allowed: each probe has its own options (run.json
    /// `probe_options`), and only a probe measured before with other settings, or a setting two
    /// probes share (suite, data, …) that changed, is refused. Writes nothing.
    static func check(_ directory: URL, probeCanonical: [SweepProbe: [String: String]], canonical: [String: String]) throws {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory.path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else {
            throw SweepError(.conflictingResults, option: .output, "results directory \(directory.path) is a file")
        }
        guard let object = try previousRun(in: directory) else {
            let contents = ((try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? []).filter { !$0.hasPrefix(".") }
            // An empty steps/ alone: another sweep is creating the directory (it writes run.json next, under the lock).
            let steps = directory.appendingPathComponent("steps").path
            let beingCreated = contents == ["steps"] && ((try? fileManager.contentsOfDirectory(atPath: steps)) ?? ["?"]).isEmpty
            guard contents.isEmpty || beingCreated else {
                throw SweepError(.conflictingResults, option: .output,
                                 "\(directory.path) exists, is not empty and has no run.json: not a sweep results directory")
            }
            return
        }
        guard let recorded = object["probe_options"] as? [String: [String: String]] else {
            throw SweepError(.conflictingResults, option: .output,
                             "\(directory.path) holds a sweep written by an earlier neoxprobe (its run.json has no per-probe options); "
                                 + "refusing to mix results. Write to a new results directory.")
        }
        var changes: [String] = []
        for probe in probeCanonical.keys.sorted() {
            guard let before = recorded[probe.rawValue], let now = probeCanonical[probe] else { continue }
            for key in Set(before.keys).union(now.keys).sorted() where before[key] != now[key] {
                changes.append("\(probe.rawValue) \(key): was \(before[key] ?? "(unset)"), now \(now[key] ?? "(unset)")")
            }
        }
        let shared = object["options"] as? [String: String] ?? [:]
        for key in Set(shared.keys).intersection(canonical.keys).sorted() where shared[key] != canonical[key] {
            let change = "\(key): was \(shared[key]!), now \(canonical[key]!)"
            if !changes.contains(where: { $0.hasSuffix(change) }) { changes.append(change) }
        }
        guard changes.isEmpty else {
            throw SweepError(.conflictingResults, option: .output,
                             "\(directory.path) holds a sweep run with different options (fingerprint \(object["fingerprint"] as? String ?? "?")); "
                                 + "refusing to mix results. Changed: \(changes.joined(separator: "; ")). "
                                 + "Adding probes or steps is allowed, changing a probe's settings is not: write to a new results "
                                 + "directory, or rerun with the original options to resume.")
        }
    }

    /// Creates the directory and its `steps/` folder (nothing else yet).
    func create() throws {
        try FileManager.default.createDirectory(at: stepsDirectory, withIntermediateDirectories: true)
    }

    // MARK: - Per checkpoint

    /// Creates a selected checkpoint's folder and, when it has none, writes its `checkpoint.json`
    /// (path, layout, content hash). The CKA reference run only for its activations gets neither.
    /// Marks `step` as passed over by `skipBroken`: `steps/stepNNNNNN/broken.json`, listed in
    /// run.json (`skipped_broken`) until a later run loads the checkpoint.
    func recordBroken(step: Int, reason: String) throws {
        let folder = stepDirectory(step)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let record: [String: Any] = ["step": step, "error": reason]
        try AtomicFile.write(JSONSerialization.data(withJSONObject: record, options: [.prettyPrinted, .sortedKeys]),
                             to: folder.appendingPathComponent(Self.brokenFileName))
    }

    static let brokenFileName = "broken.json"

    /// The reason recorded by `recordBroken` in a step folder, nil when there is none.
    static func brokenReason(in folder: URL) -> String? {
        guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(brokenFileName).path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["error"] as? String
    }

    func recordCheckpoint(_ job: SweepJob, loaded: SweepLoader.Loaded) throws {
        guard job.isSelected else { return }
        let folder = stepDirectory(job.step)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(at: folder.appendingPathComponent(Self.brokenFileName))   // it loads now
        guard job.needsCheckpointRecord else { return }
        let parameters = loaded.checkpoint.entries.values.reduce(0) { $0 + $1.elementCount }
        let record: [String: Any] = [
            "step": job.step,
            "name": job.checkpoint.name,
            "path": job.checkpoint.directory.path,
            "layout": loaded.checkpoint.layout.description,
            "content_hash": loaded.hash,
            "tensors": loaded.checkpoint.entries.count,
            "parameters": parameters,
            "files": SweepIntegrity.fileStats(of: job.checkpoint.directory),
        ]
        try AtomicFile.write(JSONSerialization.data(withJSONObject: record, options: [.prettyPrinted, .sortedKeys]),
                             to: folder.appendingPathComponent("checkpoint.json"))
    }

    /// Writes each probe's rows as its file for `step`, atomically, in canonical probe order,
    /// each followed by its row count and checksum (`SweepIntegrity`).
    func write(_ rows: [SweepProbe: [MetricRow]], step: Int) throws {
        for probe in rows.keys.sorted() {
            try SweepIntegrity.write(rows[probe]!, to: stepDirectory(step).appendingPathComponent(probe.fileName))
        }
    }
}
