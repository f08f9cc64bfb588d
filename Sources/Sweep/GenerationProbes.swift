import Corpus
import Evaluation
import Formats
import Foundation
import NeoX
import Results

/// The generation probes, `memorization` and `lambada_generation`: their options' checks, their
/// share of the fingerprint, their inputs and their measurement. Kept in one file so the rest of
/// the sweep only learns that they exist.
extension SweepProbe {
    /// Probes that decode with the KV cache.
    var generates: Bool { self == .memorization || self == .lambadaGeneration }
}

extension SweepRunner {
    public static let memorizationConvention = "Biderman et al. 2023 / EleutherAI eval_memorization.py: per row of the data, greedy "
        + "continuation of its first P tokens for exactly C tokens (EOS suppressed, as HF min_length does); score = fraction of the C "
        + "generated tokens equal to the row's tokens P..<P+C; memorization_score = mean score, memorized_fraction = rows with score 1; "
        + "per-row scores in steps/stepNNNNNN/memorization_rows.csv"
    public static let lambadaGenerationConvention = "Nicolini et al. (Garden of Forking Paths), first N LAMBADA examples as the harness "
        + "tokenizes them (sentence s = context + target, n = |s|), greedy, exactly the stated token count: generation_acc = fraction of "
        + "examples whose |target| tokens generated after the context equal the target; generation_perplexity = exp(-sum log p / tokens) "
        + "of those generated tokens; for k = 1..K, prefix s[:m], m = max(1, floor(k*n/(K+1))), continued by n-m tokens: "
        + "unmask_agreement_kK = matches with s[m:] / tokens, unmask_perplexity_kK = exp(-sum log p / tokens), pooled over examples"
}

extension SweepPlan {
    static func checkGenerationValues(of options: SweepOptions) throws {
        let probes = Set(options.probes)
        if probes.contains(.memorization) {
            guard options.memorizationPrefix >= 1 else {
                throw SweepError(.invalidOption, option: .memorizationPrefix, "memorization prefix length \(options.memorizationPrefix) is below the minimum of 1")
            }
            guard options.memorizationContinuation >= 1 else {
                throw SweepError(.invalidOption, option: .memorizationContinuation,
                                 "memorization continuation length \(options.memorizationContinuation) is below the minimum of 1")
            }
            switch options.data {
            case .rows?, .batchOfStep?: break
            case .text?:
                throw SweepError(.invalidOption, option: .data, "the memorization probe scores rows of pre-tokenized training data (PREFIX.bin/.idx with a row range or a step's batch), not a text corpus")
            case nil:
                throw SweepError(.invalidOption, option: .data, "the memorization probe needs training rows (a .bin/.idx dataset and a row range), and no data was given")
            }
        }
        if probes.contains(.lambadaGeneration) {
            if options.lambadaData == nil {
                throw SweepError(.invalidOption, option: .lambadaData, "the lambada_generation probe needs a LAMBADA data file, and none was given")
            }
            if let limit = options.lambadaGenerationLimit, limit < 1 {
                throw SweepError(.invalidOption, option: .lambadaGenerationLimit, "LAMBADA generation example limit \(limit) is below the minimum of 1")
            }
            guard (1...64).contains(options.unmaskSteps) else {
                throw SweepError(.invalidOption, option: .unmaskSteps, "unmasking steps K = \(options.unmaskSteps) must lie in 1...64")
            }
        }
    }
}

extension SweepInputs {
    /// The rows a `.rows` or `.batchOfStep` spec selects, each cut to its first `length` tokens.
    static func memorizationRows(_ data: SweepDataSpec, length: Int) throws -> [(index: Int, tokens: [Int32])] {
        let prefix: String, indices: [Int]
        switch data {
        case let .rows(p, rows, _):
            prefix = p
            indices = Array(rows)
        case let .batchOfStep(p, step, batch, _):
            prefix = p
            let dataset = try IndexedDataset(prefix: p)
            indices = dataset.rowIndices(step: step, batchSize: batch)
        case .text:
            throw SweepError(.invalidOption, option: .data, "the memorization probe needs a .bin/.idx dataset")
        }
        let dataset = try IndexedDataset(prefix: prefix)
        return try indices.map { index in
            guard index >= 0, index < dataset.count else {
                throw SweepError(.invalidOption, option: .rows, "row \(index) is outside the dataset's 0..<\(dataset.count)")
            }
            let row = try dataset.row(index)
            guard row.count >= length else {
                throw SweepError(.invalidData, option: .memorizationContinuation,
                                 "\(dataset.dataPath) row \(index) has \(row.count) tokens, fewer than prefix + continuation = \(length)")
            }
            return (index, Array(row.prefix(length)))
        }
    }
}

extension SweepMeasurer {
    /// Memorization of the plan's training rows and LAMBADA generation, as selected and missing.
    func generation(_ job: SweepJob, loaded: SweepLoader.Loaded, progress: CheckpointProgress) throws -> [SweepProbe: [MetricRow]] {
        let wanted = job.missing.filter(\.generates)
        guard !wanted.isEmpty else { return [:] }
        guard let model = loaded.model else { throw SweepError(.internal, "internal: generation probes need a model") }
        var rows: [SweepProbe: [MetricRow]] = [:]
        if wanted.contains(.memorization) {
            progress.update("memorization", fraction: 0.92)
            let evaluator = MemorizationEvaluator(model: model, prefixLength: plan.options.memorizationPrefix,
                                                  continuationLength: plan.options.memorizationContinuation)
            let result = try evaluator.evaluate(rows: plan.inputs.memorizationRows)
            // The per-row file first: the probe's own file marks the (checkpoint, probe) done.
            var text = "row,score\n"
            for score in result.scores { text += "\(score.row),\(MetricsCSV.format(score.score))\n" }
            try AtomicFile.write(Data(text.utf8), to: plan.results.stepDirectory(job.step).appendingPathComponent("memorization_rows.csv"))
            rows[.memorization] = MetricSite(step: job.step, layer: nil, site: SweepNames.memorizationSite).rows([
                MetricName.memorizationScore: result.meanScore,
                MetricName.memorizedFraction: result.memorizedFraction,
                MetricName.rowCount: Double(result.scores.count),
            ])
        }
        if wanted.contains(.lambadaGeneration), let lambada = plan.inputs.lambadaGeneration {
            progress.update("lambada_generation", fraction: 0.95)
            let result = try LambadaGenerationEvaluator(model: model, unmaskSteps: plan.options.unmaskSteps).evaluate(requests: lambada.requests)
            let at = MetricSite(step: job.step, layer: nil, site: SweepNames.lambadaGenerationSite)
            var measured = at.rows([
                MetricName.generationAcc: result.generationAcc,
                MetricName.generationPerplexity: result.generationPerplexity,
                SweepNames.exampleCount: Double(result.exampleCount),
            ])
            for u in result.unmasking {
                measured += [at.row(MetricName.unmaskAgreement(u.k), u.agreement), at.row(MetricName.unmaskPerplexity(u.k), u.perplexity)]
            }
            rows[.lambadaGeneration] = measured
        }
        return rows
    }
}
