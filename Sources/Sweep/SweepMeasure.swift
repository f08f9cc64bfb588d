import Dispatch
import Evaluation
import Formats
import NeoX
import Results

/// Measures the checkpoints of a plan, one stage at a time, each returning the rows of the probes
/// it computed so they are recorded as it ends: the forward pass (outliers, CKA, perplexity, and
/// the reference activations), the weights, LAMBADA. It keeps what later checkpoints reuse: the
/// CKA reference activations (the reference's job builds them) and the weights reference.
struct SweepMeasurer {
    let plan: SweepPlan
    private var referenceCache: SweepReferenceCache?
    /// The CKA reference model, when its activations are recomputed next to each checkpoint.
    private var referenceModel: NeoXModel?
    private var weightsReference: Checkpoint?
    /// Holds the previous checkpoint's gradients (for `cosine_previous`).
    private let gradientProbe = GradientProbe()
    /// The analysis probes' references to the final checkpoint (`AnalysisProbes.swift`).
    let analysisReferences = AnalysisReferences()

    init(plan: SweepPlan) {
        self.plan = plan
        if case .cached(let cache) = plan.referenceActivations { referenceCache = cache }
    }

    /// One streamed forward pass over the evaluation tokens feeds every activation probe `job`
    /// lacks and, for the CKA reference, the activation cache the others are compared with.
    mutating func forwardPass(_ job: SweepJob, loaded: SweepLoader.Loaded, progress: inout CheckpointProgress) throws -> [SweepProbe: [MetricRow]] {
        let probes = Set(job.missing.filter(\.usesForwardPass))
        guard !probes.isEmpty || job.writesReferenceCache else { return [:] }
        guard let model = loaded.model else { throw SweepError(.internal, "internal: step \(job.step) needs a model but none was loaded") }
        var writer: SweepReferenceCache.Writer? = nil
        var reference: ReferenceRows? = nil
        if job.writesReferenceCache {
            guard case .toBuild(let descriptor) = plan.referenceActivations else {
                throw SweepError(.internal, "internal: step \(job.step) is to write reference activations the plan does not ask for")
            }
            writer = try SweepReferenceCache.Writer(directory: plan.results.referenceDirectory, descriptor: descriptor)
            reference = .writing(writer!)
        } else if probes.contains(.cka) {
            if job.step == plan.referenceStep {
                reference = .itself
            } else if case .recompute = plan.referenceActivations {
                if referenceModel == nil {
                    referenceModel = try NeoXModel(checkpoint: Checkpoint(directory: plan.referenceCheckpoint.directory),
                                                   activation: plan.options.activation, loadUnembedding: false,
                                                   allowNonFinite: plan.options.allowNonFinite, residency: plan.options.residency)
                }
                reference = .model(referenceModel!)
            } else if let referenceCache {
                reference = .cache(referenceCache)
            } else {
                throw SweepError(.internal, "internal: CKA reference activations are missing")
            }
        }
        var measurement = ActivationMeasurement(model: model, step: job.step, sites: plan.sites, probes: probes,
                                                ckaMinibatch: plan.options.ckaMinibatch, topK: plan.options.topK)
        let start = DispatchTime.now()
        let totalTokens = plan.tokenCount
        try measurement.run(sequences: plan.sequences, tokensPerBatch: plan.options.tokensPerBatch, reference: reference) { tokens in
            progress.forward(tokens: tokens, of: totalTokens, since: start)
        }
        if let writer { referenceCache = try writer.finish() }
        return measurement.rows()
    }

    /// Weight statistics and spectra, against the weights reference and the previous selected checkpoint.
    mutating func weights(_ job: SweepJob, loaded: SweepLoader.Loaded, progress: CheckpointProgress) throws -> [SweepProbe: [MetricRow]] {
        guard job.missing.contains(.weights) else { return [:] }
        progress.update("weights", fraction: 0.85)
        if weightsReference == nil { weightsReference = try Checkpoint(directory: plan.options.prepared(plan.weightsReference)) }
        let position = plan.selected.firstIndex { $0.step == job.step }!
        let previous = position > 0 ? try Checkpoint(directory: plan.options.prepared(plan.selected[position - 1])) : nil
        let rows = try WeightProbe().measure(checkpoint: loaded.checkpoint, step: job.step, reference: weightsReference, previous: previous)
        return [.weights: rows]
    }

    /// The loss gradient on the evaluation tokens and its statistics (`GradientProbe`).
    func gradients(_ job: SweepJob, loaded: SweepLoader.Loaded, progress: CheckpointProgress) throws -> [SweepProbe: [MetricRow]] {
        guard job.missing.contains(.gradients) else { return [:] }
        progress.update("gradients", fraction: 0.8)
        guard let model = loaded.model else { throw SweepError(.internal, "internal: the gradients probe needs a model") }
        let position = plan.selected.firstIndex { $0.step == job.step }!
        let predecessor: Int? = position > 0 ? plan.selected[position - 1].step : nil
        return [.gradients: try gradientProbe.measure(model: model, step: job.step, sequences: plan.sequences,
                                                      tokensPerPass: plan.options.tokensPerBatch, predecessor: .some(predecessor))]
    }

    /// LAMBADA accuracy and perplexity on the plan's requests.
    func lambada(_ job: SweepJob, loaded: SweepLoader.Loaded, progress: CheckpointProgress) throws -> [SweepProbe: [MetricRow]] {
        guard job.missing.contains(.lambada), let tokenizer = plan.inputs.tokenizer, let lambada = plan.inputs.lambada else { return [:] }
        progress.update("lambada", fraction: 0.9)
        guard let model = loaded.model else { throw SweepError(.internal, "internal: LAMBADA needs a model") }
        let result = try LambadaEvaluator(model: model, tokenizer: tokenizer).evaluate(requests: lambada.requests)
        return [.lambada: result.metricRows(step: job.step)]
    }
}
