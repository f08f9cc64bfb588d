import Corpus
import Dispatch
import Evaluation
import Formats
import Foundation
import NeoX
import ProbeStats
import Results
import Tokenizers

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

    // MARK: - Run

    public func run() throws -> SweepSummary {
        let progress = SweepProgress(enabled: options.verbose, bar: options.progressBar)
        defer { progress.end() }
        let fileManager = FileManager.default
        let probes = Set(options.probes)
        guard !probes.isEmpty else { throw SweepError(.invalidOption, "no probes selected") }
        if let k = options.ckaMinibatch, k < 4 { throw SweepError(.invalidOption, "--cka-minibatch must be at least 4, got \(k)") }
        if let limit = options.lambadaLimit, limit < 1 { throw SweepError(.invalidOption, "--lambada-limit must be at least 1, got \(limit)") }
        guard options.topK >= 0 else { throw SweepError(.invalidOption, "--top-k must be non-negative") }

        // Suite and checkpoints.
        let suite = try SweepSuite(spec: options.suite)
        let selected = try suite.select(options.steps)
        let first = try Checkpoint(directory: selected[0].directory)
        let config = first.config

        // Tokenizer, evaluation tokens, LAMBADA requests: prepared once for every checkpoint.
        let needsTokens = probes.contains { $0.usesEvaluationTokens }
        if needsTokens && options.data == nil {
            throw SweepError(.invalidOption, "probes \(options.probes.filter(\.usesEvaluationTokens).map(\.rawValue).joined(separator: ",")) need evaluation tokens: give --data")
        }
        var tokenizerURL: URL? = nil
        var tokenizer: (any TextTokenizer)? = nil
        if (needsTokens && options.data?.needsTokenizer == true) || probes.contains(.lambada) {
            let url = try TokenizerLoader.locate(explicit: options.tokenizer.map { URL(fileURLWithPath: $0) },
                                                 modelDirectory: selected[0].directory,
                                                 fallbacks: options.tokenizerFallbacks).standardizedFileURL
            tokenizerURL = url
            tokenizer = try TokenizerLoader.load(url)
        }
        var sequences: [[Int32]] = []
        if needsTokens, let data = options.data {
            sequences = try data.load(tokenizer: tokenizer, contextLimit: config.maxPositionEmbeddings)
        }
        let tokensHash = ContentHasher.digest(of: sequences)
        var lambadaRequests: [LambadaRequest] = []
        var lambadaPath = ""
        if probes.contains(.lambada), let tokenizer {
            lambadaPath = URL(fileURLWithPath: options.lambadaData).standardizedFileURL.path
            guard fileManager.fileExists(atPath: lambadaPath) else {
                throw SweepError(.notFound, "LAMBADA data \(lambadaPath) does not exist (pass --lambada-data FILE)")
            }
            let examples = Array(try LambadaDataset.load(path: lambadaPath).prefix(options.lambadaLimit ?? Int.max))
            guard !examples.isEmpty else { throw SweepError(.invalidData, "LAMBADA data \(lambadaPath) has no examples") }
            lambadaRequests = try LambadaRequest.encode(examples, tokenizer: tokenizer, endOfText: 0)
        }

        // References.
        let referenceStep = options.referenceStep ?? selected.last!.step
        guard let referenceCheckpoint = suite.checkpoint(step: referenceStep) else {
            throw SweepError(.notFound, "--reference-step \(referenceStep) is not in the suite; available: \(suite.steps.map(String.init).joined(separator: ","))")
        }
        let weightsReferenceStep = options.weightsReferenceStep ?? (suite.checkpoint(step: 0) != nil ? 0 : selected[0].step)
        guard let weightsReference = suite.checkpoint(step: weightsReferenceStep) else {
            throw SweepError(.notFound, "--weights-reference-step \(weightsReferenceStep) is not in the suite; available: \(suite.steps.map(String.init).joined(separator: ","))")
        }

        // Canonical options: what the numbers depend on. Steps are not part of it, so a sweep can
        // be extended with more checkpoints later.
        var canonical: [String: String] = [
            "suite": suite.root.path,
            "probes": options.probes.sorted().map(\.rawValue).joined(separator: ","),
            "gelu": options.activation?.rawValue ?? "config",
        ]
        if needsTokens, let data = options.data {
            canonical.merge(data.canonical) { $1 }
            canonical["data.tokens_hash"] = tokensHash
            canonical["data.token_count"] = String(sequences.count * (sequences.first?.count ?? 0))
        }
        if probes.contains(.outliers) { canonical["top_k"] = String(options.topK) }
        if probes.contains(.cka) {
            canonical["reference_step"] = String(referenceStep)
            canonical["cka_minibatch"] = options.ckaMinibatch.map(String.init) ?? "none"
        }
        if probes.contains(.weights) { canonical["weights_reference_step"] = String(weightsReferenceStep) }
        if probes.contains(.lambada) {
            canonical["lambada_data"] = lambadaPath
            canonical["lambada_limit"] = options.lambadaLimit.map(String.init) ?? "all"
        }
        if let tokenizerURL { canonical["tokenizer"] = tokenizerURL.path }
        let canonicalJSON = String(decoding: try JSONSerialization.data(withJSONObject: canonical, options: [.sortedKeys]), as: UTF8.self)
        var fingerprintHasher = ContentHasher()
        fingerprintHasher.combine(canonicalJSON)
        let fingerprint = fingerprintHasher.hexDigest

        let output = options.output.standardizedFileURL
        try Self.prepareOutput(output, canonical: canonical, fingerprint: fingerprint)
        let stepsDirectory = output.appendingPathComponent("steps")
        try fileManager.createDirectory(at: stepsDirectory, withIntermediateDirectories: true)
        func stepDirectory(_ step: Int) -> URL { stepsDirectory.appendingPathComponent(Self.stepFolder(step)) }
        func done(_ step: Int, _ probe: SweepProbe) -> Bool {
            fileManager.fileExists(atPath: stepDirectory(step).appendingPathComponent(probe.fileName).path)
        }
        func recordedHash(_ step: Int) -> String? {
            guard let data = try? Data(contentsOf: stepDirectory(step).appendingPathComponent("checkpoint.json")),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            return object["content_hash"] as? String
        }

        let context = RunContext(options: options, suite: suite, selected: selected, output: output, canonical: canonical,
                                 fingerprint: fingerprint, tokenizerURL: tokenizerURL, sequences: sequences,
                                 tokensHash: tokensHash, referenceStep: probes.contains(.cka) ? referenceStep : nil,
                                 weightsReferenceStep: probes.contains(.weights) ? weightsReferenceStep : nil)
        try context.writeRunJSON(status: "running")

        // Plan: which probes each step still lacks; whether the CKA reference cache must be rebuilt.
        let hooks = (0..<config.numLayers).flatMap { layer in ActivationSite.allCases.map { $0.hook(layer: layer) } }
        let referenceDirectory = output.appendingPathComponent(".reference")
        var cache: SweepReferenceCache? = nil
        var cacheDescriptor: SweepReferenceCache.Descriptor? = nil
        let ckaPending = probes.contains(.cka) && selected.contains { !done($0.step, .cka) }
        if ckaPending {
            let hash: String
            if let recorded = recordedHash(referenceStep) { hash = recorded } else {
                hash = ContentHasher.digest(of: try Checkpoint(directory: referenceCheckpoint.directory))
            }
            let descriptor = SweepReferenceCache.Descriptor(fingerprint: fingerprint, referenceStep: referenceStep, checkpointHash: hash,
                                                            tokenCount: sequences.count * (sequences.first?.count ?? 0),
                                                            dimension: config.hiddenSize, hooks: hooks.map(\.name))
            cacheDescriptor = descriptor
            cache = SweepReferenceCache.open(directory: referenceDirectory, expected: descriptor)
            if cache == nil { progress.note("sweep: computing the CKA reference activations (step \(referenceStep)) into \(referenceDirectory.path)") }
        }
        let rebuildCache = ckaPending && cache == nil

        struct Job { var checkpoint: SweepCheckpoint; var missing: [SweepProbe]; var writeFiles: Bool; var writeCache: Bool; var needsRecord: Bool }
        var jobs: [Job] = []
        var skipped: [Int] = []
        var ordered = selected
        if probes.contains(.cka) {
            ordered.removeAll { $0.step == referenceStep }
            if selected.contains(where: { $0.step == referenceStep }) || rebuildCache { ordered.insert(referenceCheckpoint, at: 0) }
        }
        for checkpoint in ordered {
            let isSelected = selected.contains { $0.step == checkpoint.step }
            let missing = isSelected ? options.probes.sorted().filter { !done(checkpoint.step, $0) } : []
            let needsRecord = isSelected && recordedHash(checkpoint.step) == nil
            let writeCache = rebuildCache && checkpoint.step == referenceStep
            if missing.isEmpty && !needsRecord && !writeCache { skipped.append(checkpoint.step); continue }
            jobs.append(Job(checkpoint: checkpoint, missing: missing, writeFiles: isSelected, writeCache: writeCache, needsRecord: needsRecord))
        }
        if !skipped.isEmpty {
            progress.note("sweep: \(skipped.count) of \(selected.count) checkpoints already complete in \(output.path) (steps \(skipped.map(String.init).joined(separator: ","))), skipping them")
        }

        // Loads job k's checkpoint (and model when needed) on a background thread.
        let activation = options.activation
        func startLoading(_ k: Int) -> SweepLoader? {
            guard k < jobs.count else { return nil }
            let job = jobs[k]
            let forward = job.writeCache || job.missing.contains { $0.usesEvaluationTokens || $0 == .lambada }
            let unembed = job.missing.contains { $0 == .perplexity || $0 == .lambada }
            let knownHash = recordedHash(job.checkpoint.step)
            return SweepLoader(directory: job.checkpoint.directory, loadModel: forward, loadUnembedding: unembed,
                               activation: activation, knownHash: knownHash)
        }

        var weightsReferenceLoaded: Checkpoint? = nil
        var processed: [Int] = []
        var next = startLoading(0)
        for (k, job) in jobs.enumerated() {
            let started = DispatchTime.now()
            let step = job.checkpoint.step
            progress.update(index: k + 1, total: jobs.count, step: step, stage: "loading", fraction: 0, tokensPerSecond: nil)
            let loaded = try next!.wait()
            next = startLoading(k + 1)
            let directory = stepDirectory(step)
            if job.writeFiles { try fileManager.createDirectory(at: directory, withIntermediateDirectories: true) }
            if job.writeFiles && job.needsRecord {
                try Self.writeCheckpointRecord(to: directory, checkpoint: job.checkpoint, loaded: loaded)
            }

            // One forward pass feeds outliers, CKA, perplexity and the reference cache.
            var tokensPerSecond: Double? = nil
            let wantOutliers = job.missing.contains(.outliers)
            let wantCKA = job.missing.contains(.cka)
            let wantPerplexity = job.missing.contains(.perplexity)
            if wantOutliers || wantCKA || wantPerplexity || job.writeCache {
                guard let model = loaded.model else { throw SweepError(.internal, "internal: step \(step) needs a model but none was loaded") }
                if wantCKA && !job.writeCache && cache == nil { throw SweepError(.internal, "internal: CKA reference activations are missing") }
                let writer = job.writeCache ? try SweepReferenceCache.Writer(directory: referenceDirectory, descriptor: cacheDescriptor!) : nil
                var measurement = ActivationMeasurement(model: model, step: step, hooks: hooks, outliers: wantOutliers,
                                                        cka: wantCKA, ckaMinibatch: options.ckaMinibatch,
                                                        perplexity: wantPerplexity, topK: options.topK)
                let forwardStart = DispatchTime.now()
                try measurement.run(sequences: sequences, tokensPerBatch: options.tokensPerBatch, cache: cache, writer: writer) { tokens in
                    let seconds = WallClock.seconds(since: forwardStart)
                    let total = sequences.count * (sequences.first?.count ?? 0)
                    tokensPerSecond = seconds > 0 ? Double(tokens) / seconds : nil
                    progress.update(index: k + 1, total: jobs.count, step: step, stage: "forward",
                                    fraction: Double(tokens) / Double(max(total, 1)) * 0.8, tokensPerSecond: tokensPerSecond)
                }
                if let writer {
                    cache = try writer.finish()
                }
                if job.writeFiles {
                    if wantOutliers { try MetricsCSV.write(measurement.outlierRows(), to: directory.appendingPathComponent(SweepProbe.outliers.fileName)) }
                    if wantCKA { try MetricsCSV.write(measurement.ckaRows(), to: directory.appendingPathComponent(SweepProbe.cka.fileName)) }
                    if wantPerplexity { try MetricsCSV.write(measurement.perplexityRows(), to: directory.appendingPathComponent(SweepProbe.perplexity.fileName)) }
                }
            }

            if job.missing.contains(.weights) {
                progress.update(index: k + 1, total: jobs.count, step: step, stage: "weights", fraction: 0.85, tokensPerSecond: tokensPerSecond)
                if weightsReferenceLoaded == nil { weightsReferenceLoaded = try Checkpoint(directory: weightsReference.directory) }
                let position = selected.firstIndex { $0.step == step }!
                let previous = position > 0 ? try Checkpoint(directory: selected[position - 1].directory) : nil
                let rows = try WeightProbe().measure(checkpoint: loaded.checkpoint, step: step, reference: weightsReferenceLoaded, previous: previous)
                try MetricsCSV.write(rows, to: directory.appendingPathComponent(SweepProbe.weights.fileName))
            }

            if job.missing.contains(.lambada), let tokenizer {
                progress.update(index: k + 1, total: jobs.count, step: step, stage: "lambada", fraction: 0.9, tokensPerSecond: tokensPerSecond)
                guard let model = loaded.model else { throw SweepError(.internal, "internal: LAMBADA needs a model") }
                let result = try LambadaEvaluator(model: model, tokenizer: tokenizer).evaluate(requests: lambadaRequests)
                let site = SweepNames.lambadaSite
                let rows = [
                    MetricRow(step: step, layer: nil, site: site, metric: MetricName.acc, value: result.acc),
                    MetricRow(step: step, layer: nil, site: site, metric: MetricName.perplexity, value: result.perplexity),
                    MetricRow(step: step, layer: nil, site: site, metric: SweepNames.exampleCount, value: Double(result.n)),
                ]
                try MetricsCSV.write(rows, to: directory.appendingPathComponent(SweepProbe.lambada.fileName))
            }

            let identical = try context.regenerate()
            try context.writeRunJSON(status: k + 1 == jobs.count ? "complete" : "running")
            processed.append(step)
            let what = job.writeFiles ? (job.missing.isEmpty ? "recorded" : job.missing.map(\.rawValue).joined(separator: ",")) : "reference activations"
            progress.finished(index: k + 1, total: jobs.count, step: step, seconds: WallClock.seconds(since: started),
                              tokensPerSecond: tokensPerSecond, what: what)
            _ = identical
        }

        let identical = try context.regenerate()
        try context.writeRunJSON(status: "complete")
        for pair in identical {
            progress.note("sweep: warning: step \(pair.step) has bit-identical weights to step \(pair.sameAs) (content hash equal); recorded as checkpoint/identical_to_step")
        }
        let rowCount = try MetricsCSV.read(contentsOf: output.appendingPathComponent("metrics.csv")).count
        return SweepSummary(processedSteps: processed, skippedSteps: skipped.sorted(), identical: identical,
                            metricsRowCount: rowCount, fingerprint: fingerprint)
    }

    // MARK: - Output directory

    /// Creates `output`, or checks that an existing results directory was written with the same
    /// options; refuses to mix results otherwise.
    static func prepareOutput(_ output: URL, canonical: [String: String], fingerprint: String) throws {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: output.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw SweepError(.conflictingResults, "--out \(output.path) is a file, expected a results directory") }
            let runURL = output.appendingPathComponent("run.json")
            if let data = try? Data(contentsOf: runURL) {
                guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                      let previous = object["fingerprint"] as? String else {
                    throw SweepError(.conflictingResults, "\(runURL.path) is not a sweep run.json; refusing to write into \(output.path) (choose a new --out)")
                }
                if previous != fingerprint {
                    let before = object["options"] as? [String: String] ?? [:]
                    let keys = Set(before.keys).union(canonical.keys).sorted()
                    let changes = keys.filter { before[$0] != canonical[$0] }
                        .map { "\($0): was \(before[$0] ?? "(unset)"), now \(canonical[$0] ?? "(unset)")" }
                    throw SweepError(.conflictingResults, "\(output.path) holds a sweep run with different options (fingerprint \(previous), now \(fingerprint)); "
                        + "refusing to mix results. Changed: \(changes.joined(separator: "; ")). Use a new --out directory, or rerun with the original options to resume.")
                }
            } else {
                let contents = ((try? fileManager.contentsOfDirectory(atPath: output.path)) ?? []).filter { !$0.hasPrefix(".") }
                guard contents.isEmpty else {
                    throw SweepError(.conflictingResults, "--out \(output.path) exists, is not empty and has no run.json: not a sweep results directory; choose a new --out")
                }
            }
        } else {
            try fileManager.createDirectory(at: output, withIntermediateDirectories: true)
        }
    }

    static func writeCheckpointRecord(to directory: URL, checkpoint: SweepCheckpoint, loaded: SweepLoader.Loaded) throws {
        let parameters = loaded.checkpoint.entries.values.reduce(0) { $0 + $1.elementCount }
        let record: [String: Any] = [
            "step": checkpoint.step,
            "name": checkpoint.name,
            "path": checkpoint.directory.path,
            "layout": loaded.checkpoint.layout.description,
            "content_hash": loaded.hash,
            "tensors": loaded.checkpoint.entries.count,
            "parameters": parameters,
        ]
        try AtomicFile.write(JSONSerialization.data(withJSONObject: record, options: [.prettyPrinted, .sortedKeys]),
                             to: directory.appendingPathComponent("checkpoint.json"))
    }
}

// MARK: - Background loading

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

    init(directory: URL, loadModel: Bool, loadUnembedding: Bool, activation: MLPActivation?, knownHash: String?) {
        group.enter()
        Thread.detachNewThread { [self] in
            result = Result {
                let checkpoint = try Checkpoint(directory: directory)
                let hash = knownHash ?? ContentHasher.digest(of: checkpoint)
                let model = loadModel ? try NeoXModel(checkpoint: checkpoint, activation: activation, loadUnembedding: loadUnembedding) : nil
                return Loaded(checkpoint: checkpoint, model: model, hash: hash)
            }
            group.leave()
        }
    }

    func wait() throws -> Loaded {
        group.wait()
        return try result!.get()
    }
}

// MARK: - Forward-pass probes

/// Outliers, CKA and perplexity of one checkpoint from a single streamed forward pass over the
/// evaluation tokens: activations are consumed by the observer as they are produced and never stored.
struct ActivationMeasurement {
    let model: NeoXModel
    let step: Int
    let hooks: [HookPoint]
    let topK: Int
    private var statistics: [OutlierStatistics]
    private var accumulators: [CKAAccumulator]
    private let perplexity: Bool
    private var nll = NLLTotal()

    init(model: NeoXModel, step: Int, hooks: [HookPoint], outliers: Bool, cka: Bool, ckaMinibatch: Int?, perplexity: Bool, topK: Int) {
        self.model = model
        self.step = step
        self.hooks = hooks
        self.topK = topK
        self.perplexity = perplexity
        let d = model.config.hiddenSize
        statistics = outliers ? hooks.map { _ in OutlierStatistics(dimension: d) } : []
        accumulators = cka ? hooks.map { _ in CKAAccumulator(dimX: d, dimY: d, minibatchSize: ckaMinibatch) } : []
    }

    mutating func run(sequences: [[Int32]], tokensPerBatch: Int, cache: SweepReferenceCache?, writer: SweepReferenceCache.Writer?,
                      progress: (Int) -> Void) throws {
        guard let T = sequences.first?.count, T > 0 else { return }
        let index = Dictionary(uniqueKeysWithValues: hooks.enumerated().map { ($1, $0) })
        let wantActivations = !statistics.isEmpty || !accumulators.isEmpty || writer != nil
        var points = wantActivations ? hooks : []
        if perplexity { points.append(.lnFinalNormalized) }
        let plan = try ForwardPlan(config: model.config, hooks: points)
        let perBatch = max(1, tokensPerBatch / T)
        // The observer is an escaping closure: it works on local state, moved back at the end.
        var statistics = self.statistics, accumulators = self.accumulators, nll = self.nll
        self.statistics = []
        self.accumulators = []
        let model = self.model, wantPerplexity = self.perplexity
        var start = 0
        while start < sequences.count {
            let batch = Array(sequences[start..<min(sequences.count, start + perBatch)])
            let offset = start * T
            var scoredRows: [Int] = []
            var targets: [Int32] = []
            if wantPerplexity {
                for (b, sequence) in batch.enumerated() {
                    for t in 0..<(T - 1) { scoredRows.append(b * T + t); targets.append(sequence[t + 1]) }
                }
            }
            _ = try model.forward(tokens: batch, plan: plan) { hook, shape, values in
                if hook == .lnFinalNormalized {
                    let scores = try VocabularyScorer.score(model: model, normalized: values, rows: scoredRows, targets: targets)
                    for score in scores { nll.nllSum -= score.logProbability }
                    nll.tokens += scores.count
                    return
                }
                guard let k = index[hook] else { return }
                let rows = shape[0] * shape[1]
                if !statistics.isEmpty { statistics[k].add(rows: values, rowCount: rows, tokenOffset: offset) }
                try writer?.append(hook: hook.name, values: values)
                if !accumulators.isEmpty {
                    if writer != nil {
                        accumulators[k].add(x: values, y: values, rows: rows)
                    } else {
                        try cache!.withRows(hook: hook.name, offset: offset, count: rows) { reference in
                            accumulators[k].add(x: reference, y: values, rows: rows)
                        }
                    }
                }
            }
            start += batch.count
            progress(start * T)
        }
        self.statistics = statistics
        self.accumulators = accumulators
        self.nll = nll
    }

    private func location(_ k: Int) -> (layer: Int, site: String) {
        let sites = ActivationSite.allCases
        return (k / sites.count, sites[k % sites.count].rawValue)
    }

    func outlierRows() -> [MetricRow] {
        statistics.indices.flatMap { k in
            let (layer, site) = location(k)
            return statistics[k].metricRows(step: step, layer: layer, site: site, topK: topK)
        }
    }

    func ckaRows() -> [MetricRow] {
        accumulators.indices.flatMap { k in
            let (layer, site) = location(k)
            return accumulators[k].result().metricRows(step: step, layer: layer, site: site)
        }
    }

    func perplexityRows() -> [MetricRow] {
        let site = SweepNames.evaluationTokensSite
        return [
            MetricRow(step: step, layer: nil, site: site, metric: MetricName.perplexity, value: nll.perplexity),
            MetricRow(step: step, layer: nil, site: site, metric: MetricName.nll, value: nll.nll),
            MetricRow(step: step, layer: nil, site: site, metric: MetricName.tokenCount, value: Double(nll.tokens)),
        ]
    }
}
