import Formats
import Foundation
import Results

/// `metrics.csv` and `run.json`, rebuilt from what is on disk, so they always describe exactly
/// the per-checkpoint files present (whatever run wrote them).
extension SweepResults {
    /// Step folders present, ascending by step.
    func stepFolders() -> [(step: Int, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: stepsDirectory.path)) ?? []
        return names.compactMap { name in SweepSuite.step(fromName: name).map { ($0, stepsDirectory.appendingPathComponent(name)) } }
            .sorted { $0.step < $1.step }
    }

    /// Pairs (step, first earlier step with the same content hash).
    func identicalPairs() -> [(step: Int, sameAs: Int)] {
        var firstWithHash: [String: Int] = [:]
        var pairs: [(step: Int, sameAs: Int)] = []
        for (step, folder) in stepFolders() {
            guard let hash = Self.checkpointRecord(in: folder)?["content_hash"] as? String else { continue }
            if let earlier = firstWithHash[hash] { pairs.append((step, earlier)) } else { firstWithHash[hash] = step }
        }
        return pairs
    }

    /// Rewrites `metrics.csv` then `run.json` (with `status`) from the files present; returns the
    /// identical-checkpoint pairs they record.
    @discardableResult
    func update(_ plan: SweepPlan, status: String) throws -> [(step: Int, sameAs: Int)] {
        let identical = identicalPairs()
        try writeMetrics(identical: identical)
        try writeRunJSON(plan, status: status, identical: identical)
        return identical
    }

    /// Rewrites `metrics.csv` from the per-checkpoint files: steps ascending; per step the derived
    /// `checkpoint` rows, then each probe's file in canonical order, rows in file order.
    private func writeMetrics(identical: [(step: Int, sameAs: Int)]) throws {
        let sameAs = Dictionary(identical.map { ($0.step, $0.sameAs) }, uniquingKeysWith: { a, _ in a })
        var rows: [MetricRow] = []
        for (step, folder) in stepFolders() {
            if let earlier = sameAs[step] {
                rows.append(MetricSite(step: step, layer: nil, site: SweepNames.checkpointSite).row(SweepNames.identicalToStep, Double(earlier)))
            }
            for probe in Self.probesDone(in: folder) {
                rows += try MetricsCSV.read(contentsOf: folder.appendingPathComponent(probe.fileName))
            }
        }
        try MetricsCSV.write(rows, to: metricsURL)
    }

    /// Rewrites `run.json` atomically.
    func writeRunJSON(_ plan: SweepPlan, status: String, identical pairs: [(step: Int, sameAs: Int)]? = nil) throws {
        let identical = Dictionary((pairs ?? identicalPairs()).map { ($0.step, $0.sameAs) }, uniquingKeysWith: { a, _ in a })
        var steps: [[String: Any]] = []
        for (step, folder) in stepFolders() {
            var entry: [String: Any] = Self.checkpointRecord(in: folder) ?? ["step": step]
            entry["folder"] = "steps/" + folder.lastPathComponent
            entry["probes_done"] = Self.probesDone(in: folder).map(\.rawValue)
            if let earlier = identical[step] { entry["identical_to_step"] = earlier }
            steps.append(entry)
        }
        let options = plan.options
        var data: [String: Any] = [
            "command": "sweep",
            "tokens": ["sequences": plan.sequences.count, "sequence_length": plan.sequences.first?.count ?? 0,
                       "count": plan.tokenCount, "hash": plan.tokensHash] as [String: Any],
        ]
        if let spec = options.data { data["summary"] = spec.summary }
        let suite = plan.suite
        var object: [String: Any] = [
            "tool": "neoxprobe",
            "version": options.toolVersion,
            "status": status,
            "suite": ["spec": suite.spec, "root": suite.root.path, "kind": suite.kind.rawValue,
                      "steps_available": suite.steps, "steps_selected": plan.selected.map(\.step)] as [String: Any],
            "data": data,
            "tokenizer": plan.tokenizerURL?.path ?? NSNull(),
            "options": plan.canonical,
            "fingerprint": plan.fingerprint,
            "probes": options.probes.sorted().map(\.rawValue),
            "steps": steps,
            "identical_checkpoints": identical.keys.sorted().map { ["step": $0, "identical_to_step": identical[$0]!] },
            "conventions": [
                "perplexity": SweepRunner.perplexityConvention,
                "cka": SweepRunner.ckaConvention,
                "lambada": SweepRunner.lambadaConvention,
                "memorization": SweepRunner.memorizationConvention,
                "lambada_generation": SweepRunner.lambadaGenerationConvention,
                "metrics_csv": "long form step,layer,site,metric,value; steps ascending, per step the checkpoint rows then probes in the order "
                    + SweepProbe.allCases.map(\.rawValue).joined(separator: ",") + ", rows in file order",
            ],
        ]
        if plan.probes.contains(.cka) { object["reference_step"] = plan.referenceStep }
        if plan.probes.contains(.weights) { object["weights_reference_step"] = plan.weightsReferenceStep }
        if let k = options.ckaMinibatch { object["cka_minibatch"] = k }
        if let audit = options.auditRecord, let value = try? JSONSerialization.jsonObject(with: audit) { object["audit"] = value }
        try AtomicFile.write(JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), to: runURL)
    }
}
