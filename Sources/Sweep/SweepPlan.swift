import Formats
import Foundation

/// What a sweep will do, decided before any checkpoint is measured and without writing anything:
/// the checkpoints, the evaluation tokens and LAMBADA requests every checkpoint shares, the
/// references, the canonical options and their fingerprint, and which (checkpoint, probe) pairs
/// the results directory still lacks. Built in that order, so an input error surfaces before
/// any slow work (hashing a checkpoint) starts.
struct SweepPlan {
    let options: SweepOptions
    let probes: Set<SweepProbe>
    let suite: SweepSuite
    /// The checkpoints asked for, ascending by step.
    let selected: [SweepCheckpoint]
    /// The first selected checkpoint's config: the suite's shape (layers, width, context).
    let config: NeoXConfig
    let inputs: SweepInputs
    /// The CKA reference, validated even when CKA is not selected (the option must name a step).
    let referenceCheckpoint: SweepCheckpoint
    /// Origin of weight distances and histogram bins.
    let weightsReference: SweepCheckpoint
    /// What the numbers depend on, as strings (run.json `options`); steps are not part of it, so a
    /// sweep can be extended with more checkpoints later.
    let canonical: [String: String]
    /// Hash of `canonical`: a results directory holds one fingerprint only.
    let fingerprint: String
    let results: SweepResults
    let sites: [MeasuredSite]
    let referenceActivations: ReferenceActivations
    /// How CKA gets the reference's activations, with the disk and memory of each way (nil without CKA work).
    let ckaPlan: SweepCKAPlan?
    /// Checkpoints to load, in order (the CKA reference first when CKA has work).
    let jobs: [SweepJob]
    /// Checkpoints of the selection with nothing left to do.
    let skipped: [Int]

    var referenceStep: Int { referenceCheckpoint.step }
    var weightsReferenceStep: Int { weightsReference.step }
    var sequences: [[Int32]] { inputs.sequences }
    var tokensHash: String { inputs.tokensHash }
    var tokenCount: Int { inputs.tokenCount }
    var tokenizerURL: URL? { inputs.tokenizerURL }

    init(options: SweepOptions) throws {
        // The suite and what every checkpoint is measured on.
        try Self.checkValues(of: options)
        self.options = options
        probes = Set(options.probes)
        suite = try SweepSuite(spec: options.suite)
        selected = try suite.select(options.steps)
        config = try Checkpoint(directory: selected[0].directory).config
        sites = MeasuredSite.all(layers: config.numLayers)
        inputs = try SweepInputs(options: options, firstCheckpoint: selected[0], contextLimit: config.maxPositionEmbeddings)

        // References, sizes, and the options' identity.
        let referenceStep = options.referenceStep ?? selected.last!.step
        referenceCheckpoint = try Self.checkpoint(referenceStep, in: suite, for: "reference step", option: .referenceStep)
        let weightsReferenceStep = options.weightsReferenceStep ?? (suite.checkpoint(step: 0) != nil ? 0 : selected[0].step)
        weightsReference = try Self.checkpoint(weightsReferenceStep, in: suite, for: "weights reference step", option: .weightsReferenceStep)
        try Self.checkSizes(of: options, hiddenSize: config.hiddenSize, siteCount: sites.count, tokenCount: inputs.tokenCount)
        canonical = Self.canonicalOptions(options, suite: suite, inputs: inputs, referenceStep: referenceStep,
                                          weightsReferenceStep: weightsReferenceStep)
        fingerprint = try Self.fingerprint(of: canonical)

        // What the results directory (if it is ours) still lacks.
        results = SweepResults(directory: options.output.standardizedFileURL)
        try SweepResults.check(results.directory, canonical: canonical, fingerprint: fingerprint)
        let cacheShape = SweepReferenceCache.Descriptor(fingerprint: fingerprint, referenceStep: referenceStep, checkpointHash: "",
                                                        tokenCount: inputs.tokenCount, dimension: config.hiddenSize, hooks: sites.map(\.hook.name))
        let results = self.results, sequenceLength = inputs.sequences.first?.count ?? 0
        let ckaCheckpoints = selected.filter { !results.hasFile(step: $0.step, probe: .cka) }.count
        ckaPlan = options.probes.contains(.cka) && ckaCheckpoints > 0
            ? SweepCKAPlan(config: config, sites: sites.count, tokenCount: inputs.tokenCount,
                           sequenceLength: sequenceLength, tokensPerBatch: options.tokensPerBatch,
                           checkpoints: ckaCheckpoints, options: options, results: options.output) : nil
        referenceActivations = try ReferenceActivations.find(probes: probes, selected: selected, reference: referenceCheckpoint,
                                                             results: results, unhashed: cacheShape, path: ckaPlan?.path ?? .cache)
        (jobs, skipped) = SweepJob.schedule(options: options, selected: selected, reference: referenceCheckpoint,
                                            referenceActivations: referenceActivations, results: results)
    }

    /// Values that are wrong whatever the suite and data.
    private static func checkValues(of options: SweepOptions) throws {
        guard !options.probes.isEmpty else { throw SweepError(.invalidOption, option: .probes, "no probes selected") }
        if let k = options.ckaMinibatch, k < 4 {
            throw SweepError(.invalidOption, option: .ckaMinibatch, "CKA minibatch size \(k) is below the minimum of 4")
        }
        if let limit = options.lambadaLimit, limit < 1 {
            throw SweepError(.invalidOption, option: .lambadaLimit, "LAMBADA example limit \(limit) is below the minimum of 1")
        }
        guard options.topK >= 0 else { throw SweepError(.invalidOption, option: .topK, "top-K count \(options.topK) is negative") }
        try checkGenerationValues(of: options)
        if options.probes.contains(.lambada) && options.lambadaData == nil {
            throw SweepError(.invalidOption, option: .lambadaData, "the lambada probe needs a LAMBADA data file, and none was given")
        }
    }

    /// Values that are wrong for this model or these tokens; checked before anything is sized by
    /// them, so a hostile number is an error rather than a trap or an allocation abort.
    private static func checkSizes(of options: SweepOptions, hiddenSize d: Int, siteCount sites: Int, tokenCount: Int) throws {
        if options.probes.contains(.outliers), options.topK > d {
            throw SweepError(.invalidOption, option: .topK, "top-K count \(options.topK) exceeds the hidden size \(d), the dimensions a site has")
        }
        if options.probes.contains(.cka), let k = options.ckaMinibatch {
            guard k <= tokenCount else {
                throw SweepError(.invalidOption, option: .ckaMinibatch,
                                 "CKA minibatch size \(k) exceeds the \(tokenCount) evaluation tokens: no minibatch would be complete")
            }
            // Per site two k × d float64 buffers; per minibatch two k × k Gram matrices.
            let bytes = SweepMemory.sum([SweepMemory.product([sites, 2, k, d, 8]), SweepMemory.product([2, k, k, 8])])
            try SweepMemory.require(bytes, for: "CKA minibatches of \(k) rows for \(sites) sites of width \(d)", option: .ckaMinibatch)
        }
    }

    private static func checkpoint(_ step: Int, in suite: SweepSuite, for what: String, option: SweepOptions.Field) throws -> SweepCheckpoint {
        guard let checkpoint = suite.checkpoint(step: step) else {
            throw SweepError(.notFound, option: option, "\(what) \(step) is not in the suite; \(suite.availableSteps)")
        }
        return checkpoint
    }

    /// What the numbers depend on; options a selected probe does not read are left out.
    private static func canonicalOptions(_ options: SweepOptions, suite: SweepSuite, inputs: SweepInputs,
                                         referenceStep: Int, weightsReferenceStep: Int) -> [String: String] {
        let probes = Set(options.probes)
        var canonical: [String: String] = [
            "suite": suite.root.path,
            "probes": options.probes.sorted().map(\.rawValue).joined(separator: ","),
            "gelu": options.activation?.rawValue ?? "config",
        ]
        if inputs.usesEvaluationTokens, let data = options.data {
            canonical.merge(data.canonical) { $1 }
            canonical["data.tokens_hash"] = inputs.tokensHash
            canonical["data.token_count"] = String(inputs.tokenCount)
        }
        if probes.contains(.outliers) { canonical["top_k"] = String(options.topK) }
        if probes.contains(.cka) {
            canonical["reference_step"] = String(referenceStep)
            canonical["cka_minibatch"] = options.ckaMinibatch.map(String.init) ?? "none"
        }
        if probes.contains(.weights) { canonical["weights_reference_step"] = String(weightsReferenceStep) }
        if let lambada = inputs.lambada {
            canonical["lambada_data"] = lambada.path
            canonical["lambada_limit"] = options.lambadaLimit.map(String.init) ?? "all"
        }
        canonical.merge(generationCanonical(options, inputs: inputs)) { $1 }
        if let url = inputs.tokenizerURL { canonical["tokenizer"] = url.path }
        return canonical
    }

    private static func fingerprint(of canonical: [String: String]) throws -> String {
        // Sorted keys: the same options always give the same bytes, whatever the dictionary order.
        let json = try JSONSerialization.data(withJSONObject: canonical, options: [.sortedKeys])
        var hasher = ContentHasher()
        hasher.combine(String(decoding: json, as: UTF8.self))
        return hasher.hexDigest
    }
}
