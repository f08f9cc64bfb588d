import ArgumentParser
import Formats
import Foundation
import NeoX
import Tokenizers

/// `neoxprobe run`: one forward pass over a batch, capturing the requested hooks to a safetensors file.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model forward on token ids or text and save the requested activations as safetensors.",
        discussion: """
        Hook names follow TransformerLens: blocks.L.hook_resid_pre, blocks.L.hook_attn_out, blocks.L.hook_mlp_out, \
        blocks.L.hook_resid_mid (sequential-residual models only; Pythia is parallel), blocks.L.hook_resid_post, \
        ln_final.hook_normalized, logits. --hooks takes comma-separated globs where * matches anything, dots \
        included: '*', 'blocks.*.hook_resid_post', 'blocks.3.*,logits'. Each activation is written as float32 \
        [B, T, d] (logits [B, T, V]).
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "@FILE with one sequence of whitespace-separated token ids per line (B equal-length lines = a batch of B), or the ids inline.")
    var tokens: String?

    @Option(name: .long, help: "A UTF-8 text file to tokenize as one sequence.")
    var text: String?

    @Flag(name: .long, help: "With --text: keep the first max_position_embeddings tokens instead of failing.")
    var truncate = false

    @Option(name: .long, help: ArgumentHelp("Hooks to capture: comma-separated glob patterns; each must match a hook of the model.", valueName: "patterns"),
            transform: HookPatterns.parse)
    var hooks: HookPatterns

    @Option(name: .long, help: "Output .safetensors file (written atomically).")
    var out: String

    @Option(name: .long, help: ArgumentHelp("Run the forward pass N times and report the fastest (benchmarking).", visibility: .hidden))
    var repeats = 1

    /// More passes than this is a mistake, not a benchmark (each is a full forward pass).
    static let maxRepeats = 1000

    func validate() throws {
        guard (1...Self.maxRepeats).contains(repeats) else {
            throw ValidationError("--repeats must be between 1 and \(Self.maxRepeats), got \(repeats)")
        }
        if (tokens == nil) == (text == nil) { throw ValidationError("give exactly one of --tokens @FILE or --text FILE") }
        if truncate && text == nil { throw ValidationError("--truncate applies only to --text") }
    }

    func run() throws {
        let started = Date()
        let directory = try ModelLocator.resolve(modelOptions.model, modelFolders: SearchPaths.modelFolders)
        let checkpoint = try Checkpoint(directory: directory)
        let config = checkpoint.config

        // The plan decides what to load: only the blocks (and unembedding) the capture needs.
        let plan: ForwardPlan
        do { plan = try ForwardPlan(config: config, capture: hooks.filter) } catch let error as NeoXError where error.kind == .unknownHook {
            throw CommandFailure("--hooks: \(error.message)")
        }
        // The input first: what a pass will hold is stated (and refused if it cannot fit) before loading.
        let batch = try readInput(config: config, modelDirectory: directory)
        let residency = modelOptions.residency ?? WeightResidency.automatic(config: config, layers: plan.layers)
        let memory = try MemoryReport.require(config: config, residency: residency, plan: plan, batch: batch.count,
                                              length: batch.first?.count ?? 0, directory: directory)
        let network = try NeoXModel(checkpoint: checkpoint, plan: plan, activation: modelOptions.activation,
                                    allowNonFinite: modelOptions.allowNonFinite, residency: residency)
        for name in network.weights.ignoredTensors { warnIgnored(name, in: directory) }
        let loaded = Date()
        _ = try network.validate(tokens: batch)
        var result: ForwardResult? = nil
        var best = Double.infinity
        for _ in 0..<max(1, repeats) {
            result = nil   // release the previous pass's activations before the next
            let start = Date()
            result = try network.forward(tokens: batch, plan: plan)
            best = min(best, Date().timeIntervalSince(start))
        }
        let computed = Date()
        let activations = result!.activations, layersRun = result!.layersRun

        let outURL = URL(fileURLWithPath: out)
        try SafeTensorsWriter.write(activations.byName, to: outURL, metadata: [
            "model": directory.path, "hooks": hooks.description, "activation": network.activation.rawValue,
            "batch": "\(batch.count)", "length": "\(batch[0].count)", "format": "neoxprobe run \(NeoXProbeVersion.string)",
        ])
        let written = Date()

        let B = batch.count, T = batch[0].count
        let bytes = activations.byteCount
        func seconds(_ a: Date, _ b: Date) -> String { String(format: "%.2fs", b.timeIntervalSince(a)) }
        print("model   \(directory.path) [\(checkpoint.layout)] \(config.numLayers) layers, d=\(config.hiddenSize), \(config.numHeads) heads, \(config.parallelResidual ? "parallel" : "sequential") residual, \(network.activation.rawValue)")
        print("input   \(B)×\(T) tokens")
        print("memory  \(memory)")
        print("hooks   \(activations.count) written to \(outURL.path) (\(String(format: "%.1f", Double(bytes) / 1_048_576)) MiB):")
        for point in activations.points {
            if let tensor = activations[point] { print("        \(point.name) \(tensor.shape)") }
        }
        print("time    load \(seconds(started, loaded)), forward \(String(format: "%.3fs", best)) (\(String(format: "%.1f", Double(B * T) / best)) tokens/s over \(layersRun) layers\(repeats > 1 ? ", best of \(repeats)" : "")), write \(seconds(computed, written))")
    }

    /// The batch from --tokens or --text.
    func readInput(config: NeoXConfig, modelDirectory: URL) throws -> [[Int32]] {
        if let tokens { return try TokenFile(argument: tokens).batch() }
        let path = text!
        guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure("cannot read text file \(path)") }
        let url = try modelOptions.tokenizerOptions.locate(modelDirectory: modelDirectory)
        var ids: [Int32]
        do {
            ids = try TokenizerLoader.load(url).encode(utf8: Array(data))
        } catch TokenizerError.invalidUTF8(_, let offset) {
            throw TokenizerError.invalidUTF8(input: path, offset: offset)   // name the file, not "input text"
        }
        guard !ids.isEmpty else { throw CommandFailure("\(path): the text encodes to no tokens (empty input)") }
        if ids.count > config.maxPositionEmbeddings {
            guard truncate else {
                throw CommandFailure("\(path): the text is \(ids.count) tokens, longer than the model's context of \(config.maxPositionEmbeddings) (max_position_embeddings); pass --truncate to keep the first \(config.maxPositionEmbeddings)")
            }
            ids = Array(ids.prefix(config.maxPositionEmbeddings))
        }
        return [ids]
    }
}
