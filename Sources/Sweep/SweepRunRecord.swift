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

    /// Rewrites `metrics.csv` then `run.json` from the files present (call under the results
    /// directory's lock); returns the identical-checkpoint pairs they record.
    @discardableResult
    func update(_ plan: SweepPlan) throws -> [(step: Int, sameAs: Int)] {
        let identical = identicalPairs()
        try writeMetrics(identical: identical)
        try writeRunJSON(plan, identical: identical)
        return identical
    }

    /// Rewrites `metrics.csv` from the per-checkpoint files: steps ascending; per step the derived
    /// `checkpoint` rows, then each probe's verified file in canonical order, rows in file order.
    func writeMetrics(identical: [(step: Int, sameAs: Int)]) throws {
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

    /// Rewrites `run.json` atomically: this plan's description folded into the one on disk (so
    /// probes and steps added by earlier runs, or by other shards, stay recorded).
    func writeRunJSON(_ plan: SweepPlan, identical pairs: [(step: Int, sameAs: Int)]? = nil) throws {
        let description = Self.union(Self.runDescription(plan), try Self.previousRun(in: directory))
        try writeRun(description, identical: pairs ?? identicalPairs())
    }

    /// Adds what the files say (per-step provenance, identical checkpoints, status) to a run
    /// description and writes it as `run.json`. The one writer of `run.json`, for sweeps and merges.
    func writeRun(_ description: [String: Any], identical pairs: [(step: Int, sameAs: Int)]) throws {
        let identical = Dictionary(pairs.map { ($0.step, $0.sameAs) }, uniquingKeysWith: { a, _ in a })
        let probes = Set((description["probes"] as? [String]) ?? [])
        var steps: [[String: Any]] = []
        var done: [Int: Bool] = [:]
        var broken: [[String: Any]] = []
        for (step, folder) in stepFolders() {
            if let reason = Self.brokenReason(in: folder) { broken.append(["step": step, "error": reason]) }
            var entry: [String: Any] = Self.checkpointRecord(in: folder) ?? ["step": step]
            let probesDone = Self.probesDone(in: folder).map(\.rawValue)
            done[step] = entry["content_hash"] != nil && probes.isSubset(of: probesDone)
            entry["folder"] = "steps/" + folder.lastPathComponent
            entry["probes_done"] = probesDone
            if let earlier = identical[step] { entry["identical_to_step"] = earlier }
            steps.append(entry)
        }
        var object = description
        let selected = ((object["suite"] as? [String: Any])?["steps_selected"] as? [Int]) ?? []
        object["status"] = selected.allSatisfy { done[$0] == true } ? "complete" : "running"
        object["steps"] = steps
        if !broken.isEmpty { object["skipped_broken"] = broken }
        object["identical_checkpoints"] = identical.keys.sorted().map { ["step": $0, "identical_to_step": identical[$0]!] }
        try AtomicFile.write(JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), to: runURL)
    }

    /// What `plan` says about the run (everything in `run.json` but the per-step entries and status).
    static func runDescription(_ plan: SweepPlan) -> [String: Any] {
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
            "suite": ["spec": suite.spec, "root": suite.root.path, "kind": suite.kind.rawValue,
                      "steps_available": suite.steps, "steps_selected": plan.selected.map(\.step)] as [String: Any],
            "data": data,
            "tokenizer": plan.tokenizerURL?.path ?? NSNull(),
            "probe_options": Dictionary(uniqueKeysWithValues: plan.probeCanonical.map { ($0.key.rawValue, $0.value) }),
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
        if plan.probes.contains(.cka), let k = options.ckaMinibatch { object["cka_minibatch"] = k }
        if let audit = options.auditRecord, let value = try? JSONSerialization.jsonObject(with: audit) { object["audit"] = value }
        return withIdentity(object)
    }

    /// `fresh` with what `previous` (an earlier run of the directory, or another shard) recorded
    /// and `fresh` lacks: the union of probes and of selected steps; references, tokens and
    /// tokenizer of probes `fresh` did not run. The same descriptions give the same result in any order.
    static func union(_ fresh: [String: Any], _ previous: [String: Any]?) -> [String: Any] {
        guard let previous else { return fresh }
        var object = fresh
        var probeOptions = previous["probe_options"] as? [String: [String: String]] ?? [:]
        probeOptions.merge(fresh["probe_options"] as? [String: [String: String]] ?? [:]) { _, new in new }
        object["probe_options"] = probeOptions
        var suite = fresh["suite"] as? [String: Any] ?? [:]
        let before = (previous["suite"] as? [String: Any])?["steps_selected"] as? [Int] ?? []
        suite["steps_selected"] = Set(before + (suite["steps_selected"] as? [Int] ?? [])).sorted()
        object["suite"] = suite
        for key in ["reference_step", "weights_reference_step", "cka_minibatch", "audit"] where object[key] == nil {
            object[key] = previous[key]
        }
        let freshTokens = ((fresh["data"] as? [String: Any])?["tokens"] as? [String: Any])?["count"] as? Int ?? 0
        if freshTokens == 0, let data = previous["data"] { object["data"] = data }
        if fresh["tokenizer"] is NSNull, let tokenizer = previous["tokenizer"] { object["tokenizer"] = tokenizer }
        return withIdentity(object)
    }

    /// Sets `probes`, `options`, `probe_fingerprints` and `fingerprint` from `probe_options`.
    private static func withIdentity(_ description: [String: Any]) -> [String: Any] {
        var object = description
        let probeOptions = object["probe_options"] as? [String: [String: String]] ?? [:]
        let probes = SweepProbe.allCases.map(\.rawValue).filter { probeOptions[$0] != nil }
        object["probes"] = probes
        object["options"] = SweepPlan.flatten(probeOptions.map { ($0.key, $0.value) })
        var fingerprints: [String: String] = [:]
        for (probe, settings) in probeOptions { fingerprints[probe] = (try? SweepPlan.fingerprint(of: settings)) ?? "" }
        object["probe_fingerprints"] = fingerprints
        object["fingerprint"] = (try? SweepPlan.fingerprint(of: fingerprints)) ?? ""
        return object
    }
}
