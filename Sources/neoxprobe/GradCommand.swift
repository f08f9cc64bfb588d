import ArgumentParser
import Corpus
import Evaluation
import Formats
import Foundation
import NeoX

/// `neoxprobe grad`: the gradient of the mean next-token cross-entropy on a batch, written as
/// safetensors: parameter gradients by their HF names, activation gradients by TransformerLens's.
struct GradCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grad",
        abstract: "Gradients of the next-token loss (parameters and activations) on token ids or Megatron .bin rows, as safetensors.",
        discussion: """
        Loss: mean next-token cross-entropy. --tokens uses HF's convention (labels = input_ids: positions \
        0..T-2 predict 1..T-1, mean over B·(T-1)); .bin rows (--data with --rows a:b or --batch-of-step N) \
        Pythia's (input = the row without its last token, targets = the row shifted by one). --positions \
        keeps only those target positions (indices into the row of the predicted tokens, 1 or more).

        --params selects parameter gradients by HF tensor name (gpt_neox.layers.3.mlp.dense_4h_to_h.weight, \
        embed_out.weight, …) and --hooks activation gradients by TransformerLens hook (blocks.3.hook_resid_post \
        or blocks.3.hook_resid_post_grad; written as …_grad, [B, T, d]); both take comma-separated globs where \
        * matches anything, and only what they select is kept. Rows are processed --micro-batch at a time and \
        the gradients of all passes are summed in float64 weighted by each pass's token count (GradientAccumulator), \
        so the result is the gradient of the loss over every selected row with memory bounded by one pass.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "@FILE with one sequence of token ids per line (B equal-length lines), or the ids inline.")
    var tokens: String?

    @Option(name: .long, help: "Megatron dataset prefix (PREFIX.bin + PREFIX.idx) whose rows to use.")
    var data: String?

    @Option(name: .long, help: ArgumentHelp("With --data: absolute rows a..b-1, or with --batch-of-step batch positions a..b-1.", valueName: "a:b"),
            transform: RowRange.parse)
    var rows: RowRange?

    @Option(name: .customLong("batch-of-step"), help: "With --data: the rows 0-based training step N consumed.")
    var batchOfStep: Int?

    @Option(name: .customLong("batch-size"), help: "Rows per training step for --batch-of-step (Pythia: 1024; at most \(NumericLimits.maxBatchSize)).")
    var batchSize: Int = 1024

    @Option(name: .customLong("micro-batch"), help: "Rows per backward pass (default: every --tokens line at once, one .bin row at a time).")
    var microBatch: Int?

    @Option(name: .long, help: ArgumentHelp("Target positions to score, comma-separated (default: all).", valueName: "p,q,…"))
    var positions: String?

    @Option(name: .long, help: ArgumentHelp("Parameter gradients to keep: comma-separated globs over HF tensor names.", valueName: "patterns"),
            transform: HookPatterns.parse)
    var params: HookPatterns?

    @Option(name: .long, help: ArgumentHelp("Activation gradients to keep: comma-separated globs over hook names.", valueName: "patterns"),
            transform: HookPatterns.parse)
    var hooks: HookPatterns?

    @Option(name: .long, help: "Output .safetensors file (written atomically).")
    var out: String

    @Flag(name: .long, help: "Print one JSON object (loss, token_count, what was written) instead of text.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Run the whole computation N times and report the fastest (benchmarking).", visibility: .hidden))
    var repeats = 1

    func validate() throws {
        let sources = [tokens != nil, data != nil].filter { $0 }.count
        guard sources == 1 else { throw ValidationError("give exactly one of --tokens @FILE or --data PREFIX (with --rows a:b or --batch-of-step N)") }
        if data != nil && rows == nil && batchOfStep == nil { throw ValidationError("--data needs --rows a:b or --batch-of-step N") }
        if tokens != nil && (rows != nil || batchOfStep != nil) { throw ValidationError("--rows and --batch-of-step apply to --data") }
        try NumericLimits.checkBatch(step: batchOfStep, batchSize: batchSize, stepFlag: "--batch-of-step")
        if let microBatch, microBatch < 1 || microBatch > NumericLimits.maxBatchSize {
            throw ValidationError("--micro-batch must be between 1 and \(NumericLimits.maxBatchSize), got \(microBatch)")
        }
        guard (1...1000).contains(repeats) else { throw ValidationError("--repeats must be between 1 and 1000, got \(repeats)") }
        if params == nil && hooks == nil { throw ValidationError("give --params and/or --hooks (e.g. --params '*')") }
        _ = try targetPositions()
    }

    /// `--positions` parsed (nil: every position).
    func targetPositions() throws -> [Int]? {
        guard let positions else { return nil }
        return try positions.split(separator: ",").map { item in
            let text = item.filter { $0 != " " }
            guard let p = Int(text), p >= 1 else { throw ValidationError("--positions: '\(text)' is not a target position (a whole number, 1 or more)") }
            return p
        }
    }

    func run() throws {
        let started = Date()
        let directory = try ModelLocator.resolve(modelOptions.model, modelFolders: SearchPaths.modelFolders)
        let checkpoint = try Checkpoint(directory: directory)
        let plan: GradientPlan
        do {
            plan = try GradientPlan(config: checkpoint.config, parameters: params?.filter ?? .none, hooks: hooks?.filter ?? .none)
        } catch let error as NeoXError where error.kind == .unknownParameter || error.kind == .unknownHook {
            throw CommandFailure("\(error.kind == .unknownHook ? "--hooks" : "--params"): \(error.message)")
        }
        let model = try NeoXModel(checkpoint: checkpoint, activation: modelOptions.activation, residency: modelOptions.residency)
        let (batch, isRows) = try readBatch()
        let passes = try passInputs(batch, isRows: isRows)
        for pass in passes { _ = try model.validate(tokens: pass.inputs) }
        let loaded = Date()

        var best = Double.infinity
        var accumulated: GradientAccumulator? = nil
        for _ in 0..<repeats {
            accumulated = nil   // releases the previous repeat's gradients first
            let start = Date()
            accumulated = try GradientAccumulator.run(model, passes: passes, plan: plan)
            best = min(best, Date().timeIntervalSince(start))
        }
        let outcome = accumulated!
        let computed = Date()
        let tensors = outcome.takeTensors()
        let outURL = URL(fileURLWithPath: out)
        try SafeTensorsWriter.write(tensors, to: outURL, metadata: [
            "model": directory.path, "loss": "\(outcome.loss)", "token_count": "\(outcome.tokenCount)",
            "activation": model.activation.rawValue, "format": "neoxprobe grad \(NeoXProbeVersion.string)",
        ])
        let written = Date()

        let rowCount = batch.count, length = batch[0].count
        if json {
            var object: [String: JSONValue] = [
                "command": "grad", "model": JSONValue(directory.path), "loss": JSONValue(outcome.loss),
                "token_count": JSONValue(outcome.tokenCount), "sequences": JSONValue(rowCount), "length": JSONValue(length),
                "convention": JSONValue(isRows ? "pythia_rows" : "hf_labels"), "passes": JSONValue(passes.count),
                "out": JSONValue(outURL.path), "gradients": .array(outcome.order.map { JSONValue($0) }),
                "activation": JSONValue(model.activation.rawValue), "backward_seconds": JSONValue(best),
                "seconds": JSONValue(written.timeIntervalSince(started)),
            ]
            if let positions { object["positions"] = JSONValue(positions) }
            try EvalOutput.printJSON(object)
        } else {
            print("model   \(directory.path) [\(checkpoint.layout)] \(checkpoint.config.numLayers) layers, d=\(checkpoint.config.hiddenSize), \(model.activation.rawValue)")
            print("input   \(rowCount)×\(length) tokens (\(isRows ? "Pythia rows: input row[:-1], targets row[1:]" : "HF labels = input_ids")), \(passes.count) pass\(passes.count == 1 ? "" : "es")")
            print("loss    \(outcome.loss) over \(outcome.tokenCount) tokens")
            print("grads   \(tensors.count) written to \(outURL.path):")
            for name in outcome.order { print("        \(name) \(tensors[name]!.shape)") }
            print(String(format: "time    load %.2fs, forward+backward %.3fs%@, write %.2fs", loaded.timeIntervalSince(started), best,
                         repeats > 1 ? " (best of \(repeats))" : "", written.timeIntervalSince(computed)))
        }
    }

    /// The token rows and whether they are .bin rows (Pythia's convention) rather than --tokens (HF's).
    func readBatch() throws -> (rows: [[Int32]], isRows: Bool) {
        if let tokens { return (try TokenFile(argument: tokens).batch(), false) }
        let dataset = try IndexedDataset(prefix: data!)
        guard dataset.count > 0 else { throw CommandFailure("\(dataset.indexPath) has no rows") }
        let selected = try RowSelection.rows(step: batchOfStep, batchSize: batchSize, rows: rows?.description, rowCount: dataset.count)
        let rows = try selected.map { try dataset.row($0) }
        for (index, row) in zip(selected, rows) where row.count != rows[0].count {
            throw CommandFailure("\(data!): rows must have equal lengths to form a batch: row \(selected[0]) has \(rows[0].count) tokens, row \(index) has \(row.count)")
        }
        return (rows, true)
    }

    typealias Pass = (inputs: [[Int32]], targets: LossTargets)

    /// The batch split into passes of --micro-batch rows, each with its inputs and targets.
    func passInputs(_ batch: [[Int32]], isRows: Bool) throws -> [Pass] {
        let size = microBatch ?? (isRows ? 1 : batch.count)
        let positions = try targetPositions()
        var passes: [Pass] = []
        var start = 0
        while start < batch.count {
            let rows = Array(batch[start..<min(batch.count, start + size)])
            do {
                if isRows {
                    let (inputs, targets) = try LossTargets.shifted(rows: rows, positions: positions)
                    passes.append((inputs, targets))
                } else {
                    passes.append((rows, try LossTargets.labels(rows, positions: positions)))
                }
            } catch let error as NeoXError where error.kind == .invalidRequest {
                throw CommandFailure("--positions: \(error.message)")
            }
            start += size
        }
        return passes
    }
}
