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

        var plan = try SweepPlan(options: options)
        let results = plan.results
        // The options check again under the directory lock: another sweep may have started since.
        try results.withDirectoryLock {
            try SweepResults.check(results.directory, probeCanonical: plan.probeCanonical, canonical: plan.canonical)
            try results.create()
            try results.writeRunJSON(plan)
        }
        for warning in results.damagedFiles(steps: plan.share.map(\.step)) { progress.note(warning) }

        // The reference activations are built by one sweep; others using the directory wait for them.
        var referenceLock: SweepLock? = nil
        if plan.referenceActivations.mustBeBuilt {
            referenceLock = try acquire(results.referenceLockURL, purpose: "building the CKA reference activations (step \(plan.referenceStep))",
                                        what: "the CKA reference activations", progress: progress)
            try plan.reschedule()
            if !plan.referenceActivations.mustBeBuilt { referenceLock = nil }
        }
        report(plan, to: progress)

        var measurer = SweepMeasurer(plan: plan)
        var queue = JobQueue(plan: plan, runner: self, progress: progress)
        var processed: [Int] = []
        var measured: [SweepCheckpoint] = []
        var current = try queue.claim(blocking: true)
        var loader = current.map { load(plan, job: $0.job) }
        var k = 0
        while let (job, lock) = current {
            k += 1
            let started = DispatchTime.now()
            var checkpointProgress = CheckpointProgress(progress, index: k, total: plan.jobs.count, step: job.step)
            checkpointProgress.update("loading", fraction: 0)
            let loaded: SweepLoader.Loaded
            do {
                loaded = try loader!.wait()
            } catch let error as SweepError {
                throw error
            } catch {
                // A checkpoint that does not load (a partial download, a damaged file) is named by
                // its step; with `skipBroken` it is passed over and listed in run.json instead.
                let reason = "\(error)"
                guard options.skipBroken, job.isSelected, !job.writesReferenceCache else {
                    throw SweepError(.invalidData, option: .suite, "step \(job.step) (\(job.checkpoint.directory.path)) does not load: \(reason)"
                        + (job.writesReferenceCache ? " (it is the CKA reference, which cannot be skipped)" : ""))
                }
                progress.note("sweep: warning: skipping step \(job.step) (\(job.checkpoint.directory.path)): \(reason)")
                try results.recordBroken(step: job.step, reason: reason)
                try results.withDirectoryLock { _ = try results.update(plan) }
                lock?.release()
                current = try queue.claim(blocking: true)
                loader = current.map { load(plan, job: $0.job) }
                continue
            }
            var next = try queue.claim(blocking: false)
            var nextLoader = next.map { load(plan, job: $0.job) }

            try results.recordCheckpoint(job, loaded: loaded)
            try results.write(measurer.forwardPass(job, loaded: loaded, progress: &checkpointProgress), step: job.step)
            if job.writesReferenceCache { referenceLock?.release() }
            try results.write(measurer.weights(job, loaded: loaded, progress: checkpointProgress), step: job.step)
            try results.write(measurer.gradients(job, loaded: loaded, progress: checkpointProgress), step: job.step)
            try results.write(measurer.lambada(job, loaded: loaded, progress: checkpointProgress), step: job.step)
            try results.write(measurer.generation(job, loaded: loaded, progress: checkpointProgress), step: job.step)
            try results.write(measurer.analyses(job, loaded: loaded, progress: checkpointProgress), step: job.step)
            try results.withDirectoryLock { _ = try results.update(plan) }
            lock?.release()

            processed.append(job.step)
            measured.append(job.checkpoint)
            try releaseFinished(plan, after: plan.jobs.firstIndex { $0.step == job.step } ?? k - 1, measured: measured)
            checkpointProgress.finished(since: started, what: job.summary)
            if next == nil {
                next = try queue.claim(blocking: true)
                nextLoader = next.map { load(plan, job: $0.job) }
            }
            current = next
            loader = nextLoader
        }
        referenceLock?.release()

        let identical = try results.withDirectoryLock { try results.update(plan) }
        try releaseFinished(plan, after: plan.jobs.count, measured: measured)
        try removeCacheIfDone(plan, progress: progress)
        for pair in identical {
            progress.note("sweep: warning: step \(pair.step) has bit-identical weights to step \(pair.sameAs) (content hash equal); recorded as checkpoint/identical_to_step")
        }
        let rowCount = try MetricsCSV.read(contentsOf: results.metricsURL).count
        let skipped = Set(plan.share.map(\.step)).subtracting(processed).sorted()
        return SweepSummary(processedSteps: processed, skippedSteps: skipped, identical: identical,
                            metricsRowCount: rowCount, fingerprint: plan.fingerprint)
    }

    /// Takes a lock of the results directory, telling the user whom it waits for (or, with
    /// `waitForLocks` off, failing with the holder's name).
    fileprivate func acquire(_ url: URL, purpose: String, what: String, progress: SweepProgress) throws -> SweepLock {
        try SweepLock.acquire(url, purpose: purpose, wait: options.waitForLocks) { holder in
            progress.note("sweep: waiting for \(what): \(url.lastPathComponent) is held by \(holder?.description ?? "another process")")
        }
    }

    /// The plan's jobs, handed out one at a time to whichever sweep takes the checkpoint's lock
    /// first: a checkpoint another sweep is measuring is put off to the end and then waited for
    /// (its files are then usually there; if that sweep died, this one does the work).
    fileprivate struct JobQueue {
        let plan: SweepPlan
        let runner: SweepRunner
        let progress: SweepProgress
        private var pending: [SweepJob]
        private var deferred: [SweepJob] = []

        init(plan: SweepPlan, runner: SweepRunner, progress: SweepProgress) {
            self.plan = plan
            self.runner = runner
            self.progress = progress
            pending = plan.jobs
        }

        /// The next job with work left and its lock (nil for the unselected reference job, which
        /// writes no step files). Without `blocking`, only checkpoints nobody holds are taken.
        mutating func claim(blocking: Bool) throws -> (job: SweepJob, lock: SweepLock?)? {
            while !pending.isEmpty {
                let job = pending.removeFirst()
                guard job.isSelected else { return (job, nil) }
                let url = plan.results.stepLockURL(job.step)
                let purpose = "measuring step \(job.step)"
                let lock: SweepLock
                if job.writesReferenceCache {
                    lock = try runner.acquire(url, purpose: purpose, what: "step \(job.step)", progress: progress)
                } else if let taken = try SweepLock.attempt(url, purpose: purpose) {
                    lock = taken
                } else {
                    deferred.append(job)
                    continue
                }
                if let fresh = try refreshed(job) { return (fresh, lock) }
                lock.release()
            }
            guard blocking else { return nil }
            while !deferred.isEmpty {
                let job = deferred.removeFirst()
                let url = plan.results.stepLockURL(job.step)
                let lock = try runner.acquire(url, purpose: "measuring step \(job.step)", what: "step \(job.step)", progress: progress)
                if let fresh = try refreshed(job) { return (fresh, lock) }
                lock.release()
            }
            return nil
        }

        /// `job` as the files are now (under its lock): the checkpoint re-verified, the probes
        /// still missing; nil when nothing is left.
        private func refreshed(_ job: SweepJob) throws -> SweepJob? {
            if let warning = try plan.results.reverify(step: job.step, checkpoint: job.checkpoint) { progress.note(warning) }
            var fresh = job
            fresh.missing = plan.options.probes.sorted().filter { !plan.results.hasFile(step: job.step, probe: $0) }
            fresh.needsCheckpointRecord = plan.results.recordedHash(step: job.step) == nil
            guard !fresh.missing.isEmpty || fresh.needsCheckpointRecord || fresh.writesReferenceCache else { return nil }
            return fresh
        }
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

    /// Starts loading `job` in the background.
    private func load(_ plan: SweepPlan, job: SweepJob) -> SweepLoader {
        return SweepLoader(job: job, activation: options.activation, allowNonFinite: options.allowNonFinite,
                           residency: options.residency, knownHash: plan.results.recordedHash(step: job.step),
                           source: options.checkpointSource)
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
