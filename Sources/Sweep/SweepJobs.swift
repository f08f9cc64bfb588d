import Formats
import Foundation

/// One checkpoint a run loads, and what it is loaded for.
struct SweepJob {
    var checkpoint: SweepCheckpoint
    /// Probes whose file this checkpoint lacks, canonical order.
    var missing: [SweepProbe]
    /// One of the selected checkpoints (its files are written); false for the CKA reference when
    /// it runs only to rebuild the reference activations.
    var isSelected: Bool
    /// This is the CKA reference, run to (re)build the reference activation cache.
    var writesReferenceCache: Bool
    /// Its folder has no `checkpoint.json` yet.
    var needsCheckpointRecord: Bool

    var step: Int { checkpoint.step }

    /// A model must be built: for a forward pass (activations, perplexity, reference cache) or LAMBADA.
    var needsModel: Bool { writesReferenceCache || missing.contains { $0.usesEvaluationTokens || $0.generates || $0 == .lambada } }
    /// The model must hold `embed_out` (log-likelihoods, generation, gradients).
    var needsUnembedding: Bool { missing.contains { $0 == .perplexity || $0 == .lambada || $0 == .gradients || $0.generates } }

    /// What the progress line says was done.
    var summary: String {
        guard isSelected else { return "reference activations" }
        return missing.isEmpty ? "recorded" : missing.map(\.rawValue).joined(separator: ",")
    }

    /// The checkpoints to load, in order, and the selected steps with nothing left to do. With
    /// CKA the reference goes first (the others are compared with its activations); it is loaded
    /// even when unselected if its cached activations must be rebuilt.
    static func schedule(options: SweepOptions, selected: [SweepCheckpoint], reference: SweepCheckpoint,
                         referenceActivations: ReferenceActivations, results: SweepResults) -> (jobs: [SweepJob], skipped: [Int]) {
        let rebuildCache = referenceActivations.mustBeBuilt
        var ordered = selected
        if options.probes.contains(.cka) {
            ordered.removeAll { $0.step == reference.step }
            if selected.contains(where: { $0.step == reference.step }) || rebuildCache { ordered.insert(reference, at: 0) }
        }
        var jobs: [SweepJob] = []
        var skipped: [Int] = []
        for checkpoint in ordered {
            let isSelected = selected.contains { $0.step == checkpoint.step }
            let missing = isSelected ? options.probes.sorted().filter { !results.hasFile(step: checkpoint.step, probe: $0) } : []
            let needsRecord = isSelected && results.recordedHash(step: checkpoint.step) == nil
            let writeCache = rebuildCache && checkpoint.step == reference.step
            // A step whose checkpoint files were touched since it was measured is re-verified (under its lock).
            let trusted = !isSelected || results.recordMatchesFiles(step: checkpoint.step, checkpoint: checkpoint)
            if missing.isEmpty && !needsRecord && !writeCache && trusted { skipped.append(checkpoint.step); continue }
            jobs.append(SweepJob(checkpoint: checkpoint, missing: missing, isSelected: isSelected,
                                 writesReferenceCache: writeCache, needsCheckpointRecord: needsRecord))
        }
        return (jobs, skipped)
    }
}

/// The CKA reference checkpoint's activations, as planning finds them on disk.
enum ReferenceActivations {
    /// No selected checkpoint lacks its CKA file: the activations are not needed.
    case notNeeded
    /// A complete cache for these options and this reference checkpoint.
    case cached(SweepReferenceCache)
    /// Missing, incomplete or stale: the reference's job writes a cache matching this descriptor.
    case toBuild(SweepReferenceCache.Descriptor)
    /// Over the cache budget: the reference model runs next to each checkpoint; nothing is written.
    case recompute

    var mustBeBuilt: Bool { if case .toBuild = self { return true } else { return false } }

    /// Looks for the cache `unhashed` describes (all but the reference checkpoint's content hash,
    /// which is taken from its record, or computed, only when CKA has work).
    static func find(probes: Set<SweepProbe>, selected: [SweepCheckpoint], reference: SweepCheckpoint,
                     results: SweepResults, unhashed: SweepReferenceCache.Descriptor, options: SweepOptions,
                     path: SweepCKAPlan.Path) throws -> ReferenceActivations {
        guard probes.contains(.cka), selected.contains(where: { !results.hasFile(step: $0.step, probe: .cka) }) else { return .notNeeded }
        if path == .recompute { return .recompute }
        var descriptor = unhashed
        if !unhashed.checkpointHash.isEmpty {
            descriptor.checkpointHash = unhashed.checkpointHash  // the plan hashed it already
        } else if let recorded = results.recordedHash(step: reference.step), results.recordMatchesFiles(step: reference.step, checkpoint: reference) {
            descriptor.checkpointHash = recorded
        } else {
            descriptor.checkpointHash = ContentHasher.digest(of: try Checkpoint(directory: options.prepared(reference)))
        }
        if let cache = SweepReferenceCache.open(directory: results.referenceDirectory, expected: descriptor) { return .cached(cache) }
        return .toBuild(descriptor)
    }
}
