import Evaluation
import Formats
import Foundation
import NeoX
import ProbeStats
import Results

/// The results directory of one sweep run: rebuilds `metrics.csv` and `run.json` from what is on
/// disk, so they always describe exactly the per-checkpoint files present (whatever run wrote them).
struct RunContext {
    let options: SweepOptions
    let suite: SweepSuite
    let selected: [SweepCheckpoint]
    let output: URL
    let canonical: [String: String]
    let fingerprint: String
    let tokenizerURL: URL?
    let sequences: [[Int32]]
    let tokensHash: String
    let referenceStep: Int?
    let weightsReferenceStep: Int?

    var stepsDirectory: URL { output.appendingPathComponent("steps") }

    /// Step folders present, ascending by step.
    func stepFolders() -> [(step: Int, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: stepsDirectory.path)) ?? []
        return names.compactMap { name in SweepSuite.step(fromName: name).map { ($0, stepsDirectory.appendingPathComponent(name)) } }
            .sorted { $0.step < $1.step }
    }

    func record(_ folder: URL) -> [String: Any]? {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("checkpoint.json")) else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    /// Pairs (step, first earlier step with the same content hash).
    func identicalPairs() -> [(step: Int, sameAs: Int)] {
        var firstWithHash: [String: Int] = [:]
        var pairs: [(step: Int, sameAs: Int)] = []
        for (step, folder) in stepFolders() {
            guard let hash = record(folder)?["content_hash"] as? String else { continue }
            if let earlier = firstWithHash[hash] { pairs.append((step, earlier)) } else { firstWithHash[hash] = step }
        }
        return pairs
    }

    /// Rewrites `metrics.csv` from the per-checkpoint files: steps ascending; per step the derived
    /// `checkpoint` rows, then each probe's file in canonical order, rows in file order.
    @discardableResult
    func regenerate() throws -> [(step: Int, sameAs: Int)] {
        let identical = identicalPairs()
        let sameAs = Dictionary(identical.map { ($0.step, $0.sameAs) }, uniquingKeysWith: { a, _ in a })
        var rows: [MetricRow] = []
        for (step, folder) in stepFolders() {
            if let earlier = sameAs[step] {
                rows.append(MetricRow(step: step, layer: nil, site: SweepNames.checkpointSite, metric: SweepNames.identicalToStep,
                                      value: Double(earlier)))
            }
            for probe in SweepProbe.allCases {
                let file = folder.appendingPathComponent(probe.fileName)
                guard FileManager.default.fileExists(atPath: file.path) else { continue }
                rows += try MetricsCSV.read(contentsOf: file)
            }
        }
        try MetricsCSV.write(rows, to: output.appendingPathComponent("metrics.csv"))
        return identical
    }

    /// Rewrites `run.json` atomically.
    func writeRunJSON(status: String) throws {
        let identical = Dictionary(identicalPairs().map { ($0.step, $0.sameAs) }, uniquingKeysWith: { a, _ in a })
        var steps: [[String: Any]] = []
        for (step, folder) in stepFolders() {
            var entry: [String: Any] = record(folder) ?? ["step": step]
            entry["folder"] = "steps/" + folder.lastPathComponent
            entry["probes_done"] = SweepProbe.allCases.filter {
                FileManager.default.fileExists(atPath: folder.appendingPathComponent($0.fileName).path)
            }.map(\.rawValue)
            if let earlier = identical[step] { entry["identical_to_step"] = earlier }
            steps.append(entry)
        }
        var data: [String: Any] = [
            "command": "sweep",
            "tokens": ["sequences": sequences.count, "sequence_length": sequences.first?.count ?? 0,
                       "count": sequences.count * (sequences.first?.count ?? 0), "hash": tokensHash] as [String: Any],
        ]
        if let spec = options.data { data["summary"] = spec.summary }
        var object: [String: Any] = [
            "tool": "neoxprobe",
            "version": options.toolVersion,
            "status": status,
            "suite": ["spec": suite.spec, "root": suite.root.path, "kind": suite.kind.rawValue,
                      "steps_available": suite.steps, "steps_selected": selected.map(\.step)] as [String: Any],
            "data": data,
            "tokenizer": tokenizerURL?.path ?? NSNull(),
            "options": canonical,
            "fingerprint": fingerprint,
            "probes": options.probes.sorted().map(\.rawValue),
            "steps": steps,
            "identical_checkpoints": identical.keys.sorted().map { ["step": $0, "identical_to_step": identical[$0]!] },
            "conventions": [
                "perplexity": SweepRunner.perplexityConvention,
                "cka": SweepRunner.ckaConvention,
                "lambada": SweepRunner.lambadaConvention,
                "metrics_csv": "long form step,layer,site,metric,value; steps ascending, per step the checkpoint rows then probes in the order "
                    + SweepProbe.allCases.map(\.rawValue).joined(separator: ",") + ", rows in file order",
            ],
        ]
        if let referenceStep { object["reference_step"] = referenceStep }
        if let weightsReferenceStep { object["weights_reference_step"] = weightsReferenceStep }
        if let k = options.ckaMinibatch { object["cka_minibatch"] = k }
        try AtomicFile.write(JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]),
                             to: output.appendingPathComponent("run.json"))
    }
}
