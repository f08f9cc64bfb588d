import Formats
import Foundation

/// The integrity audit of a checkpoint suite, before anyone trusts a curve drawn from it. Several
/// published Pythia revisions serve the wrong weights (EleutherAI/pythia issues #83, #195, #198, #205,
/// #206: many branches of pythia-2.8b serve the final weights), which shows two ways:
///
/// 1. from the Hub's LFS hashes alone, no download: revisions whose weight files are identical
///    (the same multiset of sha256) to another revision's;
/// 2. after loading: a checkpoint farther from step 0 (relative L2 over all weights,
///    ‖w − w₀‖ / ‖w₀‖) than a later checkpoint, i.e. out of order with its step.
public enum HubAudit {
    public struct Row: Sendable {
        public var revision: String
        public var commit: String
        /// The training step of a `stepN` revision.
        public var step: Int?
        public var layout: String?
        /// (path, sha256 or git blob id, size) of the weight files.
        public var weightFiles: [(path: String, digest: String, size: Int64)]
        /// Other revisions with the same weight content.
        public var identicalTo: [String] = []
        /// ‖w − w_step0‖ / ‖w_step0‖, when both are in the cache.
        public var distanceFromStep0: Double?
        /// A later revision that is closer to step 0 than this one.
        public var outOfOrderWith: String?
    }

    /// The step of `stepN`.
    public static func step(_ revision: String) -> Int? {
        guard revision.hasPrefix("step"), case let digits = revision.dropFirst(4), !digits.isEmpty, digits.allSatisfy(\.isNumber) else { return nil }
        return Int(digits)
    }

    /// Rows from the listings alone; `identicalTo` filled from the weight files' digests.
    public static func rows(_ plans: [HubRevisionPlan]) -> [Row] {
        var rows = plans.map { plan -> Row in
            let weights = HubFileSelection.weights(plan.listing)
            let files = (weights?.files ?? []).filter { !$0.path.hasSuffix(".json") }
                .map { (path: $0.path, digest: $0.lfsSHA256 ?? $0.blobID ?? "size:\($0.size)", size: $0.size) }
            return Row(revision: plan.revision, commit: plan.commit, step: step(plan.revision), layout: weights?.layout.rawValue, weightFiles: files)
        }
        let keys = rows.map { row in row.weightFiles.map(\.digest).sorted().joined(separator: ",") }
        for i in rows.indices where !keys[i].isEmpty {
            rows[i].identicalTo = rows.indices.filter { $0 != i && keys[$0] == keys[i] }.map { rows[$0].revision }
        }
        return rows
    }

    /// Fills `distanceFromStep0` for rows whose snapshot is complete in the cache (step0 among them),
    /// and `outOfOrderWith` for each checkpoint farther from step 0 than a later one (relative
    /// tolerance 1e-6, so bit-identical or equal checkpoints are never out of order).
    public static func addDistances(_ rows: inout [Row], snapshots: [String: URL]) throws {
        guard let reference = rows.first(where: { $0.step == 0 }), let referenceURL = snapshots[reference.revision] else { return }
        let base = try Checkpoint(directory: referenceURL)
        var baseWeights: [String: [Float]] = [:]
        var baseNorm = 0.0
        for (name, entry) in base.entries {
            let values = try entry.float32()
            baseWeights[name] = values
            baseNorm += values.reduce(0.0) { $0 + Double($1) * Double($1) }
        }
        guard baseNorm > 0 else { return }
        for i in rows.indices {
            guard let url = snapshots[rows[i].revision] else { continue }
            if rows[i].revision == reference.revision {
                rows[i].distanceFromStep0 = 0
                continue
            }
            let checkpoint = try Checkpoint(directory: url)
            var sum = 0.0
            for (name, reference) in baseWeights {
                guard let entry = checkpoint.entries[name], entry.elementCount == reference.count else {
                    throw HubError(.malformed, "\(rows[i].revision): tensor \(name) is missing or has another shape than in \(rows.first { $0.step == 0 }!.revision)",
                                   location: url.path)
                }
                let values = try entry.float32()
                for k in values.indices {
                    let d = Double(values[k]) - Double(reference[k])
                    sum += d * d
                }
            }
            rows[i].distanceFromStep0 = (sum / baseNorm).squareRoot()
        }
        let measured = rows.indices.filter { rows[$0].step != nil && rows[$0].distanceFromStep0 != nil }
            .sorted { rows[$0].step! < rows[$1].step! }
        for (position, i) in measured.enumerated() {
            let d = rows[i].distanceFromStep0!
            if let later = measured[(position + 1)...].first(where: { rows[$0].distanceFromStep0! < d * (1 - 1e-6) }) {
                rows[i].outOfOrderWith = rows[later].revision
            }
        }
    }

    /// The table as JSON (what `audit --json` prints and a sweep records in run.json).
    public static func json(_ rows: [Row], repository: HubRepository) -> [String: Any] {
        let entries: [[String: Any]] = rows.map { row in
            var entry: [String: Any] = [
                "revision": row.revision, "commit": row.commit,
                "weight_files": row.weightFiles.map { ["path": $0.path, "sha256": $0.digest, "size": $0.size] as [String: Any] },
                "identical_to": row.identicalTo,
            ]
            entry["step"] = row.step ?? NSNull()
            entry["layout"] = row.layout ?? NSNull()
            entry["distance_from_step0"] = row.distanceFromStep0 ?? NSNull()
            entry["out_of_order_with"] = row.outOfOrderWith ?? NSNull()
            return entry
        }
        return [
            "repository": repository.description,
            "revisions": entries,
            "identical": rows.filter { !$0.identicalTo.isEmpty }.map(\.revision),
            "out_of_order": rows.filter { $0.outOfOrderWith != nil }.map(\.revision),
            "method": "identical: the same multiset of weight-file sha256 (LFS oids from the Hub's tree API, or blob names in the cache); "
                + "distance_from_step0: relative L2 ||w - w_step0|| / ||w_step0|| over all weights (float64 sums); "
                + "out_of_order_with: a later step closer to step0",
        ]
    }

    /// The table as text, one revision a line.
    public static func table(_ rows: [Row]) -> String {
        var lines = ["revision      commit    layout                     weights     distance  findings"]
        for row in rows {
            let size = HubProgress.bytes(row.weightFiles.reduce(0) { $0 + $1.size })
            let distance = row.distanceFromStep0.map { String(format: "%.6f", $0) } ?? "-"
            var findings: [String] = []
            if !row.identicalTo.isEmpty { findings.append("weights identical to \(row.identicalTo.joined(separator: ","))") }
            if let later = row.outOfOrderWith { findings.append("farther from step0 than later \(later)") }
            if row.layout == nil { findings.append("no weights") }
            lines.append(row.revision.padding(toLength: max(13, row.revision.count), withPad: " ", startingAt: 0) + " "
                + String(row.commit.prefix(8)) + "  " + (row.layout ?? "-").padding(toLength: 26, withPad: " ", startingAt: 0) + " "
                + size.padding(toLength: 11, withPad: " ", startingAt: 0) + " " + distance.padding(toLength: 9, withPad: " ", startingAt: 0)
                + " " + (findings.isEmpty ? "ok" : findings.joined(separator: "; ")))
        }
        return lines.joined(separator: "\n")
    }
}
