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

    /// Whether `probe`'s file for `step` exists: the mark that this (checkpoint, probe) is done.
    func hasFile(step: Int, probe: SweepProbe) -> Bool {
        FileManager.default.fileExists(atPath: stepDirectory(step).appendingPathComponent(probe.fileName).path)
    }

    /// The probes whose files a step folder holds, in canonical order.
    static func probesDone(in folder: URL) -> [SweepProbe] {
        SweepProbe.allCases.filter { FileManager.default.fileExists(atPath: folder.appendingPathComponent($0.fileName).path) }
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

    /// Checks that `directory` is absent, empty, or a sweep written with the same options
    /// (`fingerprint`); results from different options are never mixed. Writes nothing.
    static func check(_ directory: URL, canonical: [String: String], fingerprint: String) throws {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory.path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else {
            throw SweepError(.conflictingResults, option: .output, "results directory \(directory.path) is a file")
        }
        let runURL = directory.appendingPathComponent("run.json")
        guard let data = try? Data(contentsOf: runURL) else {
            let contents = ((try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? []).filter { !$0.hasPrefix(".") }
            guard contents.isEmpty else {
                throw SweepError(.conflictingResults, option: .output,
                                 "\(directory.path) exists, is not empty and has no run.json: not a sweep results directory")
            }
            return
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let previous = object["fingerprint"] as? String else {
            throw SweepError(.conflictingResults, option: .output, "\(runURL.path) is not a sweep run.json; refusing to write into \(directory.path)")
        }
        if previous != fingerprint {
            let before = object["options"] as? [String: String] ?? [:]
            let keys = Set(before.keys).union(canonical.keys).sorted()
            let changes = keys.filter { before[$0] != canonical[$0] }
                .map { "\($0): was \(before[$0] ?? "(unset)"), now \(canonical[$0] ?? "(unset)")" }
            throw SweepError(.conflictingResults, option: .output,
                             "\(directory.path) holds a sweep run with different options (fingerprint \(previous), now \(fingerprint)); "
                                 + "refusing to mix results. Changed: \(changes.joined(separator: "; ")). "
                                 + "Write to a new results directory, or rerun with the original options to resume.")
        }
    }

    /// Creates the directory and its `steps/` folder (nothing else yet).
    func create() throws {
        try FileManager.default.createDirectory(at: stepsDirectory, withIntermediateDirectories: true)
    }

    // MARK: - Per checkpoint

    /// Creates a selected checkpoint's folder and, when it has none, writes its `checkpoint.json`
    /// (path, layout, content hash). The CKA reference run only for its activations gets neither.
    func recordCheckpoint(_ job: SweepJob, loaded: SweepLoader.Loaded) throws {
        guard job.isSelected else { return }
        let folder = stepDirectory(job.step)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
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
        ]
        try AtomicFile.write(JSONSerialization.data(withJSONObject: record, options: [.prettyPrinted, .sortedKeys]),
                             to: folder.appendingPathComponent("checkpoint.json"))
    }

    /// Writes each probe's rows as its file for `step`, atomically, in canonical probe order.
    func write(_ rows: [SweepProbe: [MetricRow]], step: Int) throws {
        for probe in rows.keys.sorted() {
            try MetricsCSV.write(rows[probe]!, to: stepDirectory(step).appendingPathComponent(probe.fileName))
        }
    }
}
