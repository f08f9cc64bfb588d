import Formats
import Foundation
import NeoX

/// Everything a sweep is asked to do. Paths are taken as given: the library assumes no location
/// of its own (no default data files), so a front end passes its defaults explicitly.
public struct SweepOptions: Sendable {
    /// Suite directory, `models--ORG--NAME` folder, or `ORG/NAME` in the Hugging Face cache.
    public var suite: String
    /// `all` or a comma-separated list of steps.
    public var steps: String = "all"
    /// Evaluation tokens (needed by outliers, cka, perplexity).
    public var data: SweepDataSpec?
    public var probes: [SweepProbe]
    public var output: URL
    /// CKA reference (default: the last selected step).
    public var referenceStep: Int?
    /// Weight-distance and histogram reference (default: step 0 if the suite has it, else the first selected step).
    public var weightsReferenceStep: Int?
    /// Rows per minibatch of the debiased CKA estimator (nil: plain linear CKA only).
    public var ckaMinibatch: Int?
    /// LAMBADA `.jsonl` file; required when the lambada probe is selected.
    public var lambadaData: String?
    public var lambadaLimit: Int?
    /// MLP activation override (nil: the config's `hidden_act`).
    public var activation: MLPActivation?
    /// Load checkpoints whose weights hold NaN or ±inf instead of stopping at the first one.
    public var allowNonFinite = false
    /// Tokenizer file (nil: located by `TokenizerLoader.locate` from the first checkpoint's directory).
    public var tokenizer: String?
    /// Where to look for a tokenizer when the checkpoints carry none (the caller's places, in order).
    public var tokenizerFallbacks: [URL] = []
    /// Outlier dimensions listed per site (at most the hidden size).
    public var topK: Int = 8
    /// Memorization: tokens of each row given as the prompt, and tokens generated and compared
    /// (Biderman et al. 2023: 32 and 32).
    public var memorizationPrefix: Int = 32
    public var memorizationContinuation: Int = 32
    /// LAMBADA generation: the first N examples (nil: 100), and K of the causal unmasking.
    public var lambadaGenerationLimit: Int?
    public var unmaskSteps: Int = 6
    /// The analysis probes' sizes (bins, tokens, directions).
    public var analysis = AnalysisOptions()
    /// Tokens per forward pass (bounds activation memory; rounded down to whole sequences).
    public var tokensPerBatch: Int = 8192
    /// How the checkpoints' block weights are held (nil: `WeightResidency.automatic` by size).
    public var residency: WeightResidency?
    /// Most bytes the CKA reference activation cache may take on disk. A cache that would be
    /// larger is never written: the reference's activations are recomputed next to each checkpoint.
    public var cacheBudget: Int = 4 << 30
    /// Keep the CKA reference activation cache after the sweep completes (default: removed).
    public var keepCache = false
    /// Written into run.json.
    public var toolVersion: String = "unknown"
    /// Redraw a progress bar (nil: when standard error is a terminal).
    public var progressBar: Bool? = nil
    /// Print progress and warnings to standard error.
    public var verbose: Bool = true
    /// Measure only this share of the selected steps (nil: all of them); see `SweepShard`.
    public var shard: SweepShard?
    /// When another sweep holds a lock of the results directory (a checkpoint it is measuring,
    /// the reference activations it is building): wait for it (true), or stop with an error
    /// naming the holder (false).
    public var waitForLocks: Bool = true
    /// Pass over a checkpoint that does not load (listed in run.json as `skipped_broken`) instead
    /// of stopping the sweep there.
    public var skipBroken: Bool = false
    /// Checkpoints not on disk yet, fetched as the sweep goes (nil: the suite is on disk).
    public var checkpointSource: (any SweepCheckpointSource)?
    /// With a checkpoint source: how many measured checkpoints stay on disk (nil: all).
    public var keepCheckpoints: Int?
    /// A JSON object recorded in run.json as `audit` (the suite's integrity audit).
    public var auditRecord: Data?

    public init(suite: String, data: SweepDataSpec?, probes: [SweepProbe], output: URL) {
        self.suite = suite
        self.data = data
        self.probes = probes
        self.output = output
    }

    /// A setting a `SweepError` can be about: the options above and the pieces of a
    /// `SweepDataSpec`, in the library's terms (a front end maps them to its own spelling).
    public enum Field: String, Sendable, CaseIterable {
        case suite, steps, probes, output
        /// The evaluation data file or dataset prefix.
        case data
        /// The row range of a Megatron dataset.
        case rows
        /// The training step whose batch is the evaluation set.
        case batchOfStep
        case batchSize
        case sequenceLength
        /// The number of packed windows taken from a text corpus.
        case maxSequences
        case referenceStep
        case weightsReferenceStep
        case ckaMinibatch
        case lambadaData
        case lambadaLimit
        case topK
        case memorizationPrefix
        case memorizationContinuation
        case lambadaGenerationLimit
        case unmaskSteps
        /// The share of the steps (`SweepShard`).
        case shard
        /// The analysis probes' sizes (`AnalysisOptions`).
        case histogramBins, correlationTokens, svdDirections, svdTokens
        case cacheBudget
    }
}
