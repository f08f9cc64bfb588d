import Formats
import Foundation

/// Where a sweep's checkpoints come from when they are not all on disk yet (`sweep --fetch`): the
/// suite's checkpoints (their directories may not exist), a way to make one present, and a way to
/// let it go once its results are written. The runner calls `prepare` on the loader's thread, so the
/// next checkpoint arrives while the current one is measured, and `release` as soon as no pending
/// job needs a checkpoint (beyond the `keepCheckpoints` most recently measured ones).
public protocol SweepCheckpointSource: Sendable {
    /// The folder the suite lives in (recorded as the suite's root).
    var root: URL { get }
    /// Every checkpoint of the suite, ascending by step.
    var checkpoints: [SweepCheckpoint] { get }
    /// Makes the checkpoint's files present (blocking).
    func prepare(_ checkpoint: SweepCheckpoint) throws
    /// Makes only its small files present (config.json, tokenizer): what planning reads before the
    /// results directory is checked, so a refused run fetches no weights.
    func prepareMetadata(_ checkpoint: SweepCheckpoint) throws
    /// The sweep is done with `checkpoint`; `stillNeeded` are the checkpoints it will read later
    /// (files they share must stay). Removes only what this source itself put on disk.
    func release(_ checkpoint: SweepCheckpoint, stillNeeded: [SweepCheckpoint]) throws
}

extension SweepOptions {
    /// `checkpoint`'s directory, after the checkpoint source (if any) made its files present.
    func prepared(_ checkpoint: SweepCheckpoint) throws -> URL {
        try checkpointSource?.prepare(checkpoint)
        return checkpoint.directory
    }

    /// The suite's shape from `checkpoint`'s config.json (the only file planning reads from it).
    func config(of checkpoint: SweepCheckpoint) throws -> NeoXConfig {
        guard let source = checkpointSource else { return try Checkpoint(directory: checkpoint.directory).config }
        try source.prepareMetadata(checkpoint)
        return try NeoXConfig.load(contentsOf: checkpoint.directory.appendingPathComponent("config.json"))
    }
}

extension SweepRunner {
    /// Releases, through the checkpoint source, every checkpoint no job after `index` reads (its
    /// own job, the weights reference, the previous selected step a weights job compares with),
    /// except the `keepCheckpoints` most recently measured. `final`: the sweep has ended.
    func releaseFinished(_ plan: SweepPlan, after index: Int, measured: [SweepCheckpoint]) throws {
        guard let source = options.checkpointSource else { return }
        var needed: [Int: SweepCheckpoint] = [:]
        for job in plan.jobs.dropFirst(index + 1) {
            needed[job.step] = job.checkpoint
            if job.missing.contains(.weights) {
                needed[plan.weightsReference.step] = plan.weightsReference
                if let position = plan.selected.firstIndex(where: { $0.step == job.step }), position > 0 {
                    needed[plan.selected[position - 1].step] = plan.selected[position - 1]
                }
            }
        }
        let kept = Set(measured.suffix(options.keepCheckpoints ?? Int.max).map(\.step))
        let stillNeeded = needed.values.sorted { $0.step < $1.step }
        for checkpoint in plan.suite.checkpoints where needed[checkpoint.step] == nil && !kept.contains(checkpoint.step) {
            try source.release(checkpoint, stillNeeded: stillNeeded)
        }
    }
}
