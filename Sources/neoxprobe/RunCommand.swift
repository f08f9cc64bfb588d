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

        Text (--text FILE, --text - for standard input, or --prompt STRING) is tokenized exactly as given: a \
        file's trailing newline is part of the text and becomes a token (ids 187 '\\n' / 535 '\\n\\n' in the 20B \
        tokenizer); --strip removes leading and trailing whitespace first. No BOS token is prepended (Hugging \
        Face's convention); TransformerLens's to_tokens prepends one by default (prepend_bos=True): pass \
        --prepend-bos to match it (the config's bos_token_id, <|endoftext|> = 0 for Pythia).
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "@FILE with one sequence of whitespace-separated token ids per line (B equal-length lines = a batch of B), or the ids inline.")
    var tokens: String?

    @Option(name: .long, help: "A UTF-8 text file to tokenize as one sequence ('-' reads standard input).")
    var text: String?

    @Option(name: .long, help: "A text given inline, tokenized as one sequence.")
    var prompt: String?

    @Flag(name: .long, help: "With --text/--prompt: remove leading and trailing whitespace (a file's final newline included) before tokenizing.")
    var strip = false

    @Flag(name: .long, help: "With --text/--prompt: put the config's bos_token_id first, as TransformerLens does by default (not done otherwise).")
    var prependBos = false

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
        if [tokens, text, prompt].compactMap({ $0 }).count != 1 {
            throw ValidationError("give exactly one of --tokens @FILE, --text FILE (or --text - for standard input) or --prompt STRING")
        }
        if tokens != nil {
            for (flag, set) in [("--truncate", truncate), ("--strip", strip), ("--prepend-bos", prependBos)] where set {
                throw ValidationError("\(flag) applies only to --text and --prompt")
            }
        }
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
        let network = try NeoXModel(checkpoint: checkpoint, plan: plan, activation: modelOptions.activation,
                                    allowNonFinite: modelOptions.allowNonFinite)
        for name in network.weights.ignoredTensors { warnIgnored(name, in: directory) }
        let loaded = Date()

        let batch = try readInput(config: config, modelDirectory: directory)
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
        print("hooks   \(activations.count) written to \(outURL.path) (\(String(format: "%.1f", Double(bytes) / 1_048_576)) MiB):")
        for point in activations.points {
            if let tensor = activations[point] { print("        \(point.name) \(tensor.shape)") }
        }
        print("time    load \(seconds(started, loaded)), forward \(String(format: "%.3fs", best)) (\(String(format: "%.1f", Double(B * T) / best)) tokens/s over \(layersRun) layers\(repeats > 1 ? ", best of \(repeats)" : "")), write \(seconds(computed, written))")
    }

    /// The batch from --tokens or --text.
    func readInput(config: NeoXConfig, modelDirectory: URL) throws -> [[Int32]] {
        if let tokens { return try TokenFile(argument: tokens).batch() }
        let path: String
        var bytes: [UInt8]
        if let prompt {
            path = "--prompt"
            bytes = Array(prompt.utf8)
        } else if text == "-" {
            path = "standard input"
            bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
        } else {
            path = text!
            guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure("cannot read text file \(path)") }
            bytes = Array(data)
        }
        if strip { bytes = Self.stripped(bytes) }
        let url = try modelOptions.tokenizerOptions.locate(modelDirectory: modelDirectory)
        var ids: [Int32]
        do {
            ids = try TokenizerLoader.load(url).encode(utf8: bytes)
        } catch TokenizerError.invalidUTF8(_, let offset) {
            throw TokenizerError.invalidUTF8(input: path, offset: offset)   // name the file, not "input text"
        }
        if prependBos {
            guard let bos = config.bosTokenID else {
                throw CommandFailure("--prepend-bos: \(modelDirectory.appendingPathComponent("config.json").path) names no bos_token_id")
            }
            ids.insert(bos, at: 0)
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

    /// `bytes` without leading and trailing ASCII whitespace (space, tab, CR, LF, VT, FF), as
    /// Python's `str.strip()` removes them; a multi-byte character is never cut.
    static func stripped(_ bytes: [UInt8]) -> [UInt8] {
        let isSpace = { (b: UInt8) in b == 0x20 || (0x09...0x0D).contains(b) }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else { return [] }
        return Array(bytes[first...last])
    }
}
