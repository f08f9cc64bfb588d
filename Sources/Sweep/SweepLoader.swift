import Dispatch
import Formats
import Foundation
import NeoX

/// Opens a checkpoint, hashes its tensors and builds its model on a background thread, so the
/// next checkpoint loads while the current one is measured.
final class SweepLoader: @unchecked Sendable {
    struct Loaded: @unchecked Sendable {
        var checkpoint: Checkpoint
        var model: NeoXModel?
        var hash: String
    }

    private let group = DispatchGroup()
    /// Written once on the background thread before `group.leave()`, read after `group.wait()`.
    private var result: Result<Loaded, any Error>?

    init(directory: URL, loadModel: Bool, loadUnembedding: Bool, activation: MLPActivation?, allowNonFinite: Bool,
         residency: WeightResidency?, knownHash: String?, prepare: (@Sendable () throws -> Void)? = nil) {
        group.enter()
        Thread.detachNewThread { [self] in
            result = Result {
                try prepare?()
                let checkpoint = try Checkpoint(directory: directory)
                let hash = knownHash ?? ContentHasher.digest(of: checkpoint)
                let model = loadModel ? try NeoXModel(checkpoint: checkpoint, activation: activation, loadUnembedding: loadUnembedding,
                                                         allowNonFinite: allowNonFinite, residency: residency) : nil
                return Loaded(checkpoint: checkpoint, model: model, hash: hash)
            }
            group.leave()
        }
    }

    /// Starts loading what `job` needs; a hash already recorded in the results is not recomputed.
    /// `source` (a `sweep --fetch`) first makes the checkpoint's files present, on the same thread.
    convenience init(job: SweepJob, activation: MLPActivation?, allowNonFinite: Bool, residency: WeightResidency?, knownHash: String?,
                     source: (any SweepCheckpointSource)? = nil) {
        let checkpoint = job.checkpoint
        var prepare: (@Sendable () throws -> Void)?
        if let source { prepare = { try source.prepare(checkpoint) } }
        self.init(directory: job.checkpoint.directory, loadModel: job.needsModel, loadUnembedding: job.needsUnembedding,
                  activation: activation, allowNonFinite: allowNonFinite, residency: residency, knownHash: knownHash, prepare: prepare)
    }

    func wait() throws -> Loaded {
        group.wait()
        return try result!.get()
    }
}
