import Dispatch
import Foundation
import Results

/// What a finished `SweepRunner.run()` did.
public struct SweepSummary: Sendable {
    /// Steps whose model was loaded and measured in this run (reference-cache-only runs included).
    public var processedSteps: [Int]
    /// Selected steps whose files were all present already.
    public var skippedSteps: [Int]
    /// (step, earlier step with bit-identical weights).
    public var identical: [(step: Int, sameAs: Int)]
    public var metricsRowCount: Int
    public var fingerprint: String
}

/// `neoxprobe sweep`: runs probes over every checkpoint of a training suite and writes long-form
/// results that survive interruption.
///
/// Layout of `RESULTS/`:
/// - `steps/stepNNNNNN/<probe>.csv`: one `MetricsCSV` file per checkpoint and probe, written
///   atomically when that probe finishes; its presence is what marks the work done, so a rerun
///   skips it and a `kill -9` loses at most the checkpoint in flight.
/// - `steps/stepNNNNNN/checkpoint.json`: path, layout and content hash of the weights.
/// - `metrics.csv`: all per-checkpoint files concatenated (steps ascending, probes in canonical
///   order, rows in file order) plus derived `checkpoint/identical_to_step` rows, rewritten
///   atomically after every checkpoint. Deterministic: a resumed sweep produces the same bytes.
/// - `run.json`: suite, data, tokenizer, version, canonical options and their fingerprint, and
///   per-step provenance. A rerun whose options fingerprint differs is refused (never mixed).
/// - `.reference/`: the CKA reference checkpoint's activations (see `SweepReferenceCache`).
///
/// A run is four steps: plan (`SweepPlan`: inputs, references, fingerprint, what is missing),
/// load (`SweepLoader`, one checkpoint ahead in the background), measure (`SweepMeasurer`) and
/// record (`SweepResults`).
public struct SweepRunner {
    public let options: SweepOptions

    public init(options: SweepOptions) {
        self.options = options
    }

    /// The per-checkpoint folder name: zero-padded so folders list in step order.
    public static func stepFolder(_ step: Int) -> String { String(format: "step%06d", step) }

    public static let perplexityConvention = "each evaluation sequence of T tokens is run once; positions 0..T-2 predict tokens 1..T-1 "
        + "(Pythia's training convention on the sequence: T-1 scored tokens per sequence); perplexity = exp(total NLL / scored tokens)"
    public static let ckaConvention = "linear CKA (float64) of each checkpoint's activations against the reference checkpoint's on the same "
        + "tokens (every position of every evaluation sequence); cka_tokens = token count"
    public static let lambadaConvention = "lm-evaluation-harness 0.4.5 lambada_openai formulas: acc = every target token greedy, "
        + "perplexity = exp(-mean summed target log-likelihood)"

    public func run() throws -> SweepSummary {
        let progress = SweepProgress(enabled: options.verbose, bar: options.progressBar)
        defer { progress.end() }

        let plan = try SweepPlan(options: options)
        report(plan, to: progress)
        let results = plan.results
        try results.create()
        try results.writeRunJSON(plan, status: "running")

        var measurer = SweepMeasurer(plan: plan)
        var processed: [Int] = []
        var next = load(plan, job: 0)
        for (k, job) in plan.jobs.enumerated() {
            let started = DispatchTime.now()
            var checkpointProgress = CheckpointProgress(progress, index: k + 1, total: plan.jobs.count, step: job.step)
            checkpointProgress.update("loading", fraction: 0)
            let loaded = try next!.wait()
            next = load(plan, job: k + 1)

            try results.recordCheckpoint(job, loaded: loaded)
            try results.write(measurer.forwardPass(job, loaded: loaded, progress: &checkpointProgress), step: job.step)
            try results.write(measurer.weights(job, loaded: loaded, progress: checkpointProgress), step: job.step)
            try results.write(measurer.gradients(job, loaded: loaded, progress: checkpointProgress), step: job.step)
            try results.write(measurer.lambada(job, loaded: loaded, progress: checkpointProgress), step: job.step)
            try results.write(measurer.generation(job, loaded: loaded, progress: checkpointProgress), step: job.step)
            try results.update(plan, status: k + 1 == plan.jobs.count ? "complete" : "running")

            processed.append(job.step)
            checkpointProgress.finished(since: started, what: job.summary)
        }

        let identical = try results.update(plan, status: "complete")
        try removeCacheIfDone(plan, progress: progress)
        for pair in identical {
            progress.note("sweep: warning: step \(pair.step) has bit-identical weights to step \(pair.sameAs) (content hash equal); recorded as checkpoint/identical_to_step")
        }
        let rowCount = try MetricsCSV.read(contentsOf: results.metricsURL).count
        return SweepSummary(processedSteps: processed, skippedSteps: plan.skipped.sorted(), identical: identical,
                            metricsRowCount: rowCount, fingerprint: plan.fingerprint)
    }

    /// The plan as the sweep prints it before starting: checkpoints, tokens, and (with CKA work)
    /// the disk and memory of each way to get the reference's activations and the one chosen.
    public func planDescription() throws -> [String] {
        try Self.describe(SweepPlan(options: options))
    }

    static func describe(_ plan: SweepPlan) -> [String] {
        var lines = ["sweep plan: \(plan.jobs.count) checkpoint\(plan.jobs.count == 1 ? "" : "s") to load (steps "
            + "\(plan.jobs.map { String($0.step) }.joined(separator: ","))), \(plan.tokenCount) evaluation tokens in "
            + "\(plan.sequences.count) sequences, \(plan.sites.count) sites, probes \(plan.options.probes.map(\.rawValue).joined(separator: ","))"]
        if let cka = plan.ckaPlan { lines += cka.lines.map { "  " + $0 } }
        return lines
    }

    /// The reference activation cache is scratch: removed once every checkpoint has its CKA file
    /// (kept with `keepCache`, and kept after an interrupted run so a rerun resumes from it).
    private func removeCacheIfDone(_ plan: SweepPlan, progress: SweepProgress) throws {
        let directory = plan.results.referenceDirectory
        guard !options.keepCache, FileManager.default.fileExists(atPath: directory.path),
              plan.selected.allSatisfy({ plan.results.hasFile(step: $0.step, probe: .cka) || !options.probes.contains(.cka) }) else { return }
        try FileManager.default.removeItem(at: directory)
        progress.note("sweep: removed the CKA reference activation cache \(directory.path) (--keep-cache keeps it)")
    }

    /// Starts loading job `k` in the background (nil past the last).
    private func load(_ plan: SweepPlan, job k: Int) -> SweepLoader? {
        guard k < plan.jobs.count else { return nil }
        let job = plan.jobs[k]
        return SweepLoader(job: job, activation: options.activation, allowNonFinite: options.allowNonFinite,
                           residency: options.residency, knownHash: plan.results.recordedHash(step: job.step))
    }

    /// What the plan found before any work starts: a reference cache to build, checkpoints already done.
    private func report(_ plan: SweepPlan, to progress: SweepProgress) {
        for line in Self.describe(plan) { progress.note(line) }
        if plan.referenceActivations.mustBeBuilt {
            progress.note("sweep: computing the CKA reference activations (step \(plan.referenceStep)) into \(plan.results.referenceDirectory.path)")
        }
        if !plan.skipped.isEmpty {
            progress.note("sweep: \(plan.skipped.count) of \(plan.selected.count) checkpoints already complete in \(plan.results.directory.path) "
                + "(steps \(plan.skipped.map(String.init).joined(separator: ","))), skipping them")
        }
    }
}
