import ArgumentParser
import Foundation
import Sweep

/// `neoxprobe sweep`: probes every checkpoint of a training suite on one fixed set of tokens and
/// writes resumable long-form results (see `SweepRunner` for the layout).
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run probes (\(SweepProbe.allCases.map(\.rawValue).joined(separator: ", "))) over every checkpoint of a training suite.",
        discussion: """
        The suite is a directory of stepN/ checkpoints, or a Hugging Face cache repository (ORG/NAME, or a \
        models--ORG--NAME folder) with refs/stepN. Every checkpoint is measured on the same evaluation tokens:
          --data PREFIX --rows a:b [--seq-len T]
              rows a..b-1 of a Megatron .bin/.idx, first T tokens each
          --data PREFIX --batch-of-step N [--batch-size B]
              the rows of 0-based training step N (Pythia batch semantics)
          --data FILE.jsonl[.zst] --max-sequences N [--seq-len T]
              documents + EOD packed into N windows of T
        T defaults to 2048. Perplexity uses the same tokens: position t predicts token t+1 of each sequence \
        (T-1 scored tokens a sequence). CKA compares each checkpoint with --reference-step (default: the last \
        step), whose activations are cached in RESULTS/.reference.

        Results: RESULTS/steps/stepNNNNNN/<probe>.csv, RESULTS/metrics.csv (long form \
        step,layer,site,metric,value), RESULTS/run.json. Rerunning resumes: finished (checkpoint, probe) files \
        are re-verified (row count and checksum; checkpoint file sizes and times) and skipped. Probes and steps \
        may be added to a results directory; a changed setting of a measured probe, or of the data, is refused.

        Several sweeps may share a results directory (each checkpoint is locked while measured); --shard i/n \
        measures share i of n of the steps, and `neoxprobe merge` / `neoxprobe slurm` put shards together.
        """)

    @Option(name: .long, help: "Suite: a directory of stepN/ checkpoints, ORG/NAME in the Hugging Face cache, or a models--ORG--NAME folder.")
    var suite: String

    @Option(name: .long, help: ArgumentHelp("Steps to measure: all, or a comma-separated list (e.g. 0,512,2000). Default: all.", valueName: "steps"),
            transform: StepSelection.parse)
    var steps: StepSelection = .all

    @Option(name: .long, help: "Evaluation tokens: a Megatron dataset PREFIX (.bin/.idx) or a .jsonl/.jsonl.zst/.txt corpus.")
    var data: String?

    @Option(name: .long, help: ArgumentHelp("Rows a:b of the .bin/.idx dataset (b exclusive; also a:, :b, a).", valueName: "a:b"),
            transform: RowRange.parse)
    var rows: RowRange?

    @Option(name: .long, help: "Use the rows of this 0-based training step (with --batch-size).")
    var batchOfStep: Int?

    @Option(name: .long, help: "Batch size for --batch-of-step (Pythia: 1024; at most \(NumericLimits.maxBatchSize)).")
    var batchSize: Int = 1024

    @Option(name: .long, help: "Tokens per evaluation sequence (default 2048).")
    var seqLen: Int?

    @Option(name: .long, help: "Packed windows to take from a text corpus.")
    var maxSequences: Int?

    @Option(name: .long, help: ArgumentHelp("Comma-separated probes: \(SweepProbe.allCases.map(\.rawValue).joined(separator: ",")). Default: outliers,cka,weights.", valueName: "probes"),
            transform: ProbeList.parse)
    var probes = ProbeList([.outliers, .cka, .weights])

    @Option(name: .long, help: "Results directory.")
    var out: String

    @Option(name: .long, help: "CKA reference step (default: the last selected step).")
    var referenceStep: Int?

    @Option(name: .long, help: "Weights reference step for distances and histogram bins (default: 0).")
    var weightsReferenceStep: Int?

    @Option(name: .long, help: "Also compute the debiased minibatch CKA with K rows per minibatch (4 to \(Self.maxCKAMinibatch)).")
    var ckaMinibatch: Int?

    @Option(name: .long, help: "LAMBADA jsonl (default: \(LambadaCommand.defaultData)).")
    var lambadaData: String?

    @Option(name: .long, help: "Evaluate only the first N LAMBADA examples.")
    var lambadaLimit: Int?

    @Option(name: .long, help: "memorization: tokens of each row given as the prompt (default 32).")
    var memorizationPrefix: Int = 32

    @Option(name: .long, help: "memorization: tokens generated and compared with the row (default 32).")
    var memorizationContinuation: Int = 32

    @Option(name: .long, help: "lambada_generation: the first N LAMBADA examples (default 100).")
    var lambadaGenerationLimit: Int?

    @Option(name: .long, help: "lambada_generation: K of the causal unmasking, prefixes of k/(K+1) of each sentence (default 6).")
    var unmaskSteps: Int = 6

    @Option(name: .long, help: "activation_histograms: fixed bins per site, from the suite's last step (default 64).")
    var histogramBins: Int = 64

    @Option(name: .long, help: "embeddings: the first N token embeddings correlated with each other (default 256).")
    var correlationTokens: Int = 256

    @Option(name: .long, help: "svd_directions: top singular directions per matrix (default 4).")
    var svdDirections: Int = 4

    @Option(name: .long, help: "svd_directions: tokens listed at each end of a direction (default 10).")
    var svdTokens: Int = 10

    @OptionGroup var activationOptions: ActivationOptions

    @OptionGroup var tokenizerOptions: TokenizerOptions

    @Option(name: .long, help: "Outlier dimensions listed per site.")
    var topK: Int = 8

    @Option(name: .long, help: "Tokens per forward pass (bounds activation memory).")
    var tokensPerBatch: Int = 8192

    @Flag(name: .long, help: "No progress output on standard error.")
    var quiet = false

    @Option(name: .long, help: ArgumentHelp("Measure only share i of n of the steps (i from 0, as SLURM_ARRAY_TASK_ID counts), "
                                                + "or 'slurm' for SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT; see `neoxprobe slurm`.",
                                            valueName: "i/n|slurm"))
    var shard: String?

    @Flag(name: .long, help: "When another sweep holds a lock of the results directory, stop with an error naming it instead of waiting.")
    var noWait = false

    @Flag(name: .long, help: "Pass over a checkpoint that does not load (a partial download, a damaged file) with a warning naming its step; run.json lists it as skipped_broken. The CKA reference cannot be skipped.")
    var skipBroken = false

    @Flag(name: .long, help: "Fetch the checkpoints of a Hub suite (ORG/NAME) as the sweep goes, the next while the current one is measured.")
    var fetch = false

    @Option(name: .long, help: ArgumentHelp("With --fetch: measured checkpoints kept on disk (N or all; default 0: each is removed once its results are written).",
                                            valueName: "N|all"))
    var keepCheckpoints: KeepCheckpoints = .count(0)

    @Option(name: .long, help: ArgumentHelp("Most disk the CKA reference activation cache may take (e.g. 512M, 4G; default 4G). A larger cache is never written: the reference's activations are recomputed next to each checkpoint instead.", valueName: "size"),
            transform: ByteSize.parse)
    var cacheBudget: Int = 4 << 30

    @Flag(name: .long, help: "Keep the CKA reference activation cache (RESULTS/.reference) after the sweep completes.")
    var keepCache = false

    @Flag(name: .long, help: "Print the sweep's plan (tokens, sites, checkpoints, disk and memory of each CKA path) and exit.")
    var plan = false

    /// The debiased estimator builds K×K Gram matrices of doubles: 4096 keeps each at 128 MiB
    /// (Nguyen et al. use a few hundred rows).
    static let maxCKAMinibatch = 4096

    func validate() throws {
        try NumericLimits.checkBatch(step: batchOfStep, batchSize: batchSize, stepFlag: "--batch-of-step")
        if let maxSequences, maxSequences < 1 { throw ValidationError("--max-sequences must be at least 1, got \(maxSequences)") }
        if let ckaMinibatch, !(4...Self.maxCKAMinibatch).contains(ckaMinibatch) {
            throw ValidationError("--cka-minibatch must be between 4 and \(Self.maxCKAMinibatch), got \(ckaMinibatch)")
        }
        if let lambadaLimit, lambadaLimit < 1 { throw ValidationError("--lambada-limit must be at least 1, got \(lambadaLimit)") }
        if topK < 0 { throw ValidationError("--top-k must be 0 or more, got \(topK)") }
        if tokensPerBatch < 1 { throw ValidationError("--tokens-per-batch must be at least 1, got \(tokensPerBatch)") }
        if keepCheckpoints != .count(0) && !fetch { throw ValidationError("--keep-checkpoints applies to --fetch only") }
    }

    /// Errors from the sweep print as their message, prefixed with the flag of the option at
    /// fault; the libraries under it print as their message alone.
    func run() throws {
        do {
            try sweep()
        } catch let error as SweepError {
            throw CommandFailure(Self.message(for: error))
        }
    }

    private func sweep() throws {
        let spec = try data.map {
            try SweepDataSpec.parse(data: $0, rows: rows?.description, batchOfStep: batchOfStep, batchSize: batchSize,
                                    sequenceLength: seqLen, maxSequences: maxSequences)
        }
        var options = SweepOptions(suite: suite, data: spec, probes: probes.probes, output: URL(fileURLWithPath: out))
        options.steps = steps.description
        options.referenceStep = referenceStep
        options.weightsReferenceStep = weightsReferenceStep
        options.ckaMinibatch = ckaMinibatch
        options.lambadaData = lambadaData ?? SearchPaths.firstFile(SearchPaths.lambada)?.path ?? LambadaCommand.defaultData
        options.lambadaLimit = lambadaLimit
        options.activation = activationOptions.activation
        options.allowNonFinite = activationOptions.allowNonfinite
        options.tokenizer = tokenizerOptions.tokenizer
        options.tokenizerFallbacks = SearchPaths.tokenizers
        options.topK = topK
        options.memorizationPrefix = memorizationPrefix
        options.memorizationContinuation = memorizationContinuation
        options.lambadaGenerationLimit = lambadaGenerationLimit
        options.unmaskSteps = unmaskSteps
        options.analysis.activationHistogramBins = histogramBins
        options.analysis.correlationTokens = correlationTokens
        options.analysis.svdDirections = svdDirections
        options.analysis.svdTokens = svdTokens
        options.tokensPerBatch = tokensPerBatch
        options.residency = activationOptions.residency
        options.cacheBudget = cacheBudget
        options.keepCache = keepCache
        options.toolVersion = NeoXProbeVersion.string
        options.verbose = !quiet
        options.shard = try shard.map { try SweepShard.parse($0) }
        options.waitForLocks = !noWait
        options.skipBroken = skipBroken
        try addHubOptions(&options)
        if plan {
            print(try SweepRunner(options: options).planDescription().joined(separator: "\n"))
            return
        }
        let summary = try SweepRunner(options: options).run()
        let metrics = URL(fileURLWithPath: out).appendingPathComponent("metrics.csv").path
        print("sweep: \(summary.processedSteps.count) checkpoints measured, \(summary.skippedSteps.count) already complete; "
            + "\(summary.metricsRowCount) rows in \(metrics)")
    }

    /// A sweep error as this command reports it: prefixed with the flag of the option at fault.
    static func message(for error: SweepError) -> String {
        guard let option = error.option else { return error.description }
        return "\(flag(option)): \(error.description)"
    }

    /// The flag that sets each sweep option.
    static func flag(_ option: SweepOptions.Field) -> String {
        switch option {
        case .suite: return "--suite"
        case .steps: return "--steps"
        case .probes: return "--probes"
        case .output: return "--out"
        case .data: return "--data"
        case .rows: return "--rows"
        case .batchOfStep: return "--batch-of-step"
        case .batchSize: return "--batch-size"
        case .sequenceLength: return "--seq-len"
        case .maxSequences: return "--max-sequences"
        case .referenceStep: return "--reference-step"
        case .weightsReferenceStep: return "--weights-reference-step"
        case .ckaMinibatch: return "--cka-minibatch"
        case .lambadaData: return "--lambada-data"
        case .lambadaLimit: return "--lambada-limit"
        case .topK: return "--top-k"
        case .memorizationPrefix: return "--memorization-prefix"
        case .memorizationContinuation: return "--memorization-continuation"
        case .lambadaGenerationLimit: return "--lambada-generation-limit"
        case .unmaskSteps: return "--unmask-steps"
        case .shard: return "--shard"
        case .histogramBins: return "--histogram-bins"
        case .correlationTokens: return "--correlation-tokens"
        case .svdDirections: return "--svd-directions"
        case .svdTokens: return "--svd-tokens"
        case .cacheBudget: return "--cache-budget"
        }
    }
}

/// A byte count on the command line: digits with an optional binary suffix K, M, G or T
/// (KiB, MiB, GiB, TiB; a trailing "B"/"iB" is accepted).
enum ByteSize {
    static func parse(_ text: String) throws -> Int {
        var digits = text.trimmingCharacters(in: .whitespaces).uppercased()
        for suffix in ["IB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count { digits.removeLast(suffix.count) }
        var shift = 0
        if let last = digits.last, let index = ["K", "M", "G", "T"].firstIndex(of: String(last)) {
            shift = 10 * (index + 1)
            digits.removeLast()
        }
        guard let value = Int(digits), value >= 0 else {
            throw ValidationError("'\(text)' is not a size: digits with an optional K, M, G or T suffix (e.g. 512M, 4G)")
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { throw ValidationError("size '\(text)' is larger than \(Int.max) bytes") }
        return bytes
    }
}
