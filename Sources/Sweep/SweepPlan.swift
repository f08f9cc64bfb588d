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
    /// The checkpoints asked for, ascending by step (all shards' together: references and each
    /// step's predecessor are taken from this).
    let selected: [SweepCheckpoint]
    /// The checkpoints this run measures: `selected`, or this shard's share of it.
    let share: [SweepCheckpoint]
    /// The first selected checkpoint's config: the suite's shape (layers, width, context).
    let config: NeoXConfig
    let inputs: SweepInputs
    /// The CKA reference, validated even when CKA is not selected (the option must name a step).
    let referenceCheckpoint: SweepCheckpoint
    /// Origin of weight distances and histogram bins.
    let weightsReference: SweepCheckpoint
    /// What each probe's numbers depend on, as strings (run.json `probe_options`); steps are not
    /// part of it, so a sweep can be extended with more checkpoints, and probes are separate, so
    /// it can be extended with more probes.
    let probeCanonical: [SweepProbe: [String: String]]
    /// All probes' settings in one map (run.json `options`).
    let canonical: [String: String]
    /// Hash of each probe's settings.
    let probeFingerprints: [SweepProbe: String]
    /// Hash of the selected probes' fingerprints.
    let fingerprint: String
    let results: SweepResults
    let sites: [MeasuredSite]
    private(set) var referenceActivations: ReferenceActivations
    /// How CKA gets the reference's activations, with the disk and memory of each way (nil without CKA work).
    let ckaPlan: SweepCKAPlan?
    /// Checkpoints to load, in order (the CKA reference first when CKA has work).
    private(set) var jobs: [SweepJob]
    /// Checkpoints of the share with nothing left to do.
    private(set) var skipped: [Int]
    /// The shape of the reference activation cache, all but the checkpoint hash.
    let cacheShape: SweepReferenceCache.Descriptor

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
        if let source = options.checkpointSource {
            suite = try SweepSuite(spec: options.suite, root: source.root, checkpoints: source.checkpoints)
        } else {
            suite = try SweepSuite(spec: options.suite)
        }
        selected = try suite.select(options.steps)
        if let shard = options.shard {
            if options.probes.contains(.gradients) && shard.count > 1 {
                throw SweepError(.invalidOption, option: .shard,
                                 "the gradients probe cannot be sharded: its cosine_previous compares each checkpoint's gradient with the "
                                     + "previous checkpoint's, which only a sweep through every step in order computes")
            }
            share = shard.share(of: selected, sizes: selected.map { SweepShard.size(of: $0.directory) })
        } else {
            share = selected
        }
        config = try options.config(of: selected[0])
        sites = MeasuredSite.all(layers: config.numLayers)
        inputs = try SweepInputs(options: options, firstCheckpoint: selected[0], contextLimit: config.maxPositionEmbeddings)

        // References (a results directory keeps the ones it was started with), sizes, and the
        // options' identity.
        let previous = try SweepResults.previousRun(in: options.output.standardizedFileURL)
        let referenceStep = options.referenceStep ?? (previous?["reference_step"] as? Int) ?? selected.last!.step
        referenceCheckpoint = try Self.checkpoint(referenceStep, in: suite, for: "reference step", option: .referenceStep)
        let weightsReferenceStep = options.weightsReferenceStep ?? (previous?["weights_reference_step"] as? Int)
            ?? (suite.checkpoint(step: 0) != nil ? 0 : selected[0].step)
        weightsReference = try Self.checkpoint(weightsReferenceStep, in: suite, for: "weights reference step", option: .weightsReferenceStep)
        try Self.checkSizes(of: options, hiddenSize: config.hiddenSize, siteCount: sites.count, tokenCount: inputs.tokenCount)
        // CKA numbers depend on the reference's weights, not only its step: a reference checkpoint
        // replaced on disk is a changed setting (refused), never silently mixed.
        let referenceHash = probes.contains(.cka)
            ? try Self.contentHash(of: referenceCheckpoint, in: SweepResults(directory: options.output.standardizedFileURL), options: options) : ""
        var perProbe: [SweepProbe: [String: String]] = [:]
        for probe in probes {
            perProbe[probe] = Self.canonicalOptions(probe, options: options, suite: suite, inputs: inputs, referenceStep: referenceStep,
                                                    weightsReferenceStep: weightsReferenceStep)
            if probe == .cka { perProbe[probe]!["reference_content_hash"] = referenceHash }
        }
        probeCanonical = perProbe
        canonical = Self.flatten(perProbe.map { ($0.key.rawValue, $0.value) })
        var fingerprints: [SweepProbe: String] = [:]
        for (probe, settings) in perProbe { fingerprints[probe] = try Self.fingerprint(of: settings) }
        probeFingerprints = fingerprints
        fingerprint = try Self.fingerprint(of: Dictionary(uniqueKeysWithValues: fingerprints.map { ($0.key.rawValue, $0.value) }))

        // What the results directory (if it is ours) still lacks.
        results = SweepResults(directory: options.output.standardizedFileURL)
        try SweepResults.check(results.directory, probeCanonical: probeCanonical, canonical: canonical)
        cacheShape = SweepReferenceCache.Descriptor(fingerprint: fingerprints[.cka] ?? fingerprint, referenceStep: referenceStep, checkpointHash: referenceHash,
                                                    tokenCount: inputs.tokenCount, dimension: config.hiddenSize, hooks: sites.map(\.hook.name))
        let results = self.results, sequenceLength = inputs.sequences.first?.count ?? 0
        let ckaCheckpoints = share.filter { !results.hasFile(step: $0.step, probe: .cka) }.count
        ckaPlan = options.probes.contains(.cka) && ckaCheckpoints > 0
            ? SweepCKAPlan(config: config, sites: sites.count, tokenCount: inputs.tokenCount,
                           sequenceLength: sequenceLength, tokensPerBatch: options.tokensPerBatch,
                           checkpoints: ckaCheckpoints, options: options, results: options.output) : nil
        referenceActivations = .notNeeded
        jobs = []
        skipped = []
        try reschedule()
    }

    /// Decides again, from the files present now, whether the reference activations must be
    /// built and which checkpoints have work left (another sweep on the directory may have done
    /// some since this plan was made).
    mutating func reschedule() throws {
        referenceActivations = try ReferenceActivations.find(probes: probes, selected: share, reference: referenceCheckpoint,
                                                             results: results, unhashed: cacheShape, options: options,
                                                             path: ckaPlan?.path ?? .cache)
        (jobs, skipped) = SweepJob.schedule(options: options, selected: share, reference: referenceCheckpoint,
                                            referenceActivations: referenceActivations, results: results)
    }

    /// A checkpoint's content hash: the one its record holds when its files are unchanged since,
    /// else computed.
    private static func contentHash(of checkpoint: SweepCheckpoint, in results: SweepResults, options: SweepOptions) throws -> String {
        if let recorded = results.recordedHash(step: checkpoint.step), results.recordMatchesFiles(step: checkpoint.step, checkpoint: checkpoint) {
            return recorded
        }
        return ContentHasher.digest(of: try Checkpoint(directory: options.prepared(checkpoint)))
    }

    /// Several probes' settings as one map: for each key the value of the first probe (canonical
    /// order) that has it.
    static func flatten(_ perProbe: [(probe: String, settings: [String: String])]) -> [String: String] {
        let order = SweepProbe.allCases.map(\.rawValue)
        var flat: [String: String] = [:]
        for (_, settings) in perProbe.sorted(by: { (order.firstIndex(of: $0.probe) ?? .max) < (order.firstIndex(of: $1.probe) ?? .max) }) {
            flat.merge(settings) { first, _ in first }
        }
        return flat
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
        try options.analysis.check(Set(options.probes))
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

    /// What `probe`'s numbers depend on; options it does not read are left out.
    private static func canonicalOptions(_ probe: SweepProbe, options: SweepOptions, suite: SweepSuite, inputs: SweepInputs,
                                         referenceStep: Int, weightsReferenceStep: Int) -> [String: String] {
        var canonical: [String: String] = [
            "suite": suite.root.path,
            "gelu": options.activation?.rawValue ?? "config",
        ]
        if probe.usesEvaluationTokens, let data = options.data {
            canonical.merge(data.canonical) { $1 }
            canonical["data.tokens_hash"] = inputs.tokensHash
            canonical["data.token_count"] = String(inputs.tokenCount)
            if data.needsTokenizer, let url = inputs.tokenizerURL { canonical["tokenizer"] = url.path }
        }
        switch probe {
        case .outliers:
            canonical["top_k"] = String(options.topK)
        case .cka:
            canonical["reference_step"] = String(referenceStep)
            canonical["cka_minibatch"] = options.ckaMinibatch.map(String.init) ?? "none"
        case .weights:
            canonical["weights_reference_step"] = String(weightsReferenceStep)
        case .perplexity, .gradients:
            break
        case .lambada:
            if let lambada = inputs.lambada {
                canonical["lambada_data"] = lambada.path
                canonical["lambada_limit"] = options.lambadaLimit.map(String.init) ?? "all"
            }
            if let url = inputs.tokenizerURL { canonical["tokenizer"] = url.path }
        case .memorization:
            if let data = options.data {
                canonical.merge(data.canonical) { $1 }
                canonical["memorization_prefix"] = String(options.memorizationPrefix)
                canonical["memorization_continuation"] = String(options.memorizationContinuation)
                canonical["memorization_tokens_hash"] = inputs.memorizationHash
            }
        case .lambadaGeneration:
            if let lambada = inputs.lambadaGeneration {
                canonical["lambada_data"] = lambada.path
                canonical["lambada_generation_limit"] = String(lambada.requests.count)
                canonical["unmask_steps"] = String(options.unmaskSteps)
            }
            if let url = inputs.tokenizerURL { canonical["tokenizer"] = url.path }
        case .activationHistograms, .embeddings, .spectra, .weightShape:
            canonical.merge(options.analysis.canonical([probe], finalStep: suite.checkpoints.last!.step)) { $1 }
        case .svdDirections:
            canonical.merge(options.analysis.canonical([probe], finalStep: suite.checkpoints.last!.step)) { $1 }
            if let url = inputs.tokenizerURL { canonical["tokenizer"] = url.path }
        }
        return canonical
    }

    static func fingerprint(of canonical: [String: String]) throws -> String {
        // Sorted keys: the same options always give the same bytes, whatever the dictionary order.
        let json = try JSONSerialization.data(withJSONObject: canonical, options: [.sortedKeys])
        var hasher = ContentHasher()
        hasher.combine(String(decoding: json, as: UTF8.self))
        return hasher.hexDigest
    }
}
