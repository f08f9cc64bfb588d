import Formats
import Foundation
import Results
#if canImport(Glibc)
import Glibc
#endif

/// What lets a resumed sweep trust what it skips.
///
/// - Each per-checkpoint `<probe>.csv` has a sidecar `<probe>.csv.sum` (`rows=N hash=H`: its
///   row count and the `ContentHasher` digest of its bytes), written atomically *after* the CSV.
///   A probe counts as done only when both agree with the file, so a CSV truncated at a line
///   boundary, edited, or left without its sidecar by a kill between the two renames is
///   recomputed, never merged.
/// - `checkpoint.json` records the size and modification time (nanoseconds) of every file of the
///   checkpoint directory. A rerun compares them (a `stat` per file) and, when one differs,
///   hashes the tensors again: same content → the record's file list is refreshed; different
///   content → the step's results are removed and measured again.
enum SweepIntegrity {
    static func sumURL(_ csv: URL) -> URL { csv.deletingLastPathComponent().appendingPathComponent(csv.lastPathComponent + ".sum") }

    /// The sidecar line for the bytes of a CSV.
    static func sumLine(of data: Data) -> String {
        let rows = data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) } - 1
        var hasher = ContentHasher()
        data.withUnsafeBytes { hasher.combine(bytes: $0) }
        return "rows=\(max(rows, 0)) hash=\(hasher.hexDigest)\n"
    }

    /// Writes `rows` as a metrics CSV at `url`, then its sidecar.
    static func write(_ rows: [MetricRow], to url: URL) throws {
        let data = Data(MetricsCSV.encode(rows).utf8)
        try AtomicFile.write(data, to: url)
        try AtomicFile.write(sumLine(of: data), to: sumURL(url))
    }

    /// Whether the CSV at `url` and its sidecar agree.
    enum FileState: Equatable {
        case absent, verified
        /// Present but not trustworthy (why).
        case damaged(String)
    }

    static func state(of url: URL) -> FileState {
        guard let data = FileManager.default.contents(atPath: url.path) else { return .absent }
        guard let sum = FileManager.default.contents(atPath: sumURL(url).path) else {
            return .damaged("it has no \(sumURL(url).lastPathComponent) (row count and checksum), so it may be incomplete")
        }
        let expected = String(decoding: sum, as: UTF8.self)
        let actual = sumLine(of: data)
        guard expected == actual else {
            return .damaged("its content does not match \(sumURL(url).lastPathComponent) (recorded \(expected.trimmingCharacters(in: .newlines)), "
                + "found \(actual.trimmingCharacters(in: .newlines))): truncated or edited")
        }
        return .verified
    }

    // MARK: - Checkpoint files

    /// Name, size and modification time of each file of a checkpoint directory (symlinks
    /// followed), sorted by name, as recorded in `checkpoint.json` under `files`.
    static func fileStats(of directory: URL) -> [[String: Any]] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        return names.compactMap { name -> [String: Any]? in
            var info = stat()
            guard stat(directory.appendingPathComponent(name).path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
            let nanoseconds = Int(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int(info.st_mtim.tv_nsec)
            return ["name": name, "size": Int(info.st_size), "mtime_ns": nanoseconds]
        }
    }

    /// Whether the recorded file list equals the directory's now (false when none was recorded).
    static func statsMatch(record: [String: Any], directory: URL) -> Bool {
        guard let recorded = record["files"] as? [[String: Any]] else { return false }
        let now = fileStats(of: directory)
        guard recorded.count == now.count else { return false }
        for (a, b) in zip(recorded, now) {
            guard a["name"] as? String == b["name"] as? String, (a["size"] as? NSNumber)?.intValue == b["size"] as? Int,
                  (a["mtime_ns"] as? NSNumber)?.intValue == b["mtime_ns"] as? Int else { return false }
        }
        return true
    }
}

extension SweepResults {
    /// Re-verifies step `step`'s record against its checkpoint files (call under the step's
    /// lock): unchanged files are trusted; touched files are hashed again, and the record is
    /// refreshed when the tensors are the same, or the step's results removed when they are not.
    /// Returns a warning to print, if any.
    func reverify(step: Int, checkpoint: SweepCheckpoint) throws -> String? {
        let folder = stepDirectory(step)
        guard var record = Self.checkpointRecord(in: folder), let recordedHash = record["content_hash"] as? String else { return nil }
        if SweepIntegrity.statsMatch(record: record, directory: checkpoint.directory) { return nil }
        let hash = ContentHasher.digest(of: try Checkpoint(directory: checkpoint.directory))
        if hash == recordedHash {
            record["files"] = SweepIntegrity.fileStats(of: checkpoint.directory)
            try AtomicFile.write(JSONSerialization.data(withJSONObject: record, options: [.prettyPrinted, .sortedKeys]),
                                 to: folder.appendingPathComponent("checkpoint.json"))
            return nil
        }
        let fileManager = FileManager.default
        for name in (try? fileManager.contentsOfDirectory(atPath: folder.path)) ?? [] where !name.hasPrefix(".lock") {
            try fileManager.removeItem(at: folder.appendingPathComponent(name))
        }
        return "sweep: warning: step \(step): the checkpoint in \(checkpoint.directory.path) changed since it was measured "
            + "(content hash was \(recordedHash), now \(hash)); its results are removed and measured again"
    }

    /// Whether a step's record matches its checkpoint files without hashing (a skipped step must).
    func recordMatchesFiles(step: Int, checkpoint: SweepCheckpoint) -> Bool {
        guard let record = Self.checkpointRecord(in: stepDirectory(step)) else { return true }
        return SweepIntegrity.statsMatch(record: record, directory: checkpoint.directory)
    }
}
