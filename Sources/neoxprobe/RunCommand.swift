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
        Hook names and shapes follow TransformerLens's HookedTransformer: hook_embed; per block blocks.L.hook_resid_pre, \
        ln1.hook_scale [B,T,1], ln1.hook_normalized (before the LayerNorm's weight and bias), attn.hook_q/k/v and \
        attn.hook_rot_q/rot_k [B,T,H,dh], attn.hook_attn_scores and attn.hook_pattern [B,H,T,T], attn.hook_z [B,T,H,dh], \
        attn.hook_result [B,T,H,d], hook_attn_out, hook_resid_mid (sequential-residual models only; Pythia is parallel), \
        ln2.*, mlp.hook_pre and mlp.hook_post [B,T,ff], hook_mlp_out, hook_resid_post; ln_final.hook_scale, \
        ln_final.hook_normalized, logits [B,T,V]; everything else [B,T,d]. --hooks takes comma-separated globs where * \
        matches anything, dots included: '*', 'blocks.*.hook_resid_post', 'blocks.3.*,logits', 'blocks.2.attn.hook_pattern'. \
        Attention matrices are [B,H,T,T]: name the blocks you need. The file's metadata holds the token ids and the tokenizer's \
        file name and sha256. --ablate, --patch and --add edit hooks during the pass (TransformerLens run_with_hooks); the \
        run then also reports the clean run's and the edited run's next-token loss and the largest logit change.

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
    var hooks: HookPatterns?

    @Option(name: .long, help: "Output .safetensors file (written atomically).")
    var out: String?

    @OptionGroup var interventionOptions: InterventionOptions

    @Flag(name: .long, help: "Show progress (blocks of the pass) on standard error even when it is not a terminal (on a terminal it always is).")
    var progress = false

    @Flag(name: .long, help: "Print one JSON object (hooks written, and with interventions the losses and logit differences).")
    var json = false

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
        if (hooks == nil) != (out == nil) { throw ValidationError("--hooks and --out go together") }
        if hooks == nil && interventionOptions.isEmpty {
            throw ValidationError("give --hooks PATTERNS --out FILE (and/or an intervention: --ablate, --patch, --add)")
        }
    }

    func run() throws {
        let started = Date()
        let directory = try ModelLocator.resolve(modelOptions.model, modelFolders: SearchPaths.modelFolders)
        let checkpoint = try Checkpoint(directory: directory)
        let config = checkpoint.config

        // The plan decides what to load: only the blocks (and unembedding) the capture needs; an
        // edited pass runs to the logits, which are compared with the clean pass's.
        let edited = !interventionOptions.isEmpty
        let capture = hooks?.filter ?? .none
        let plan: ForwardPlan
        do { plan = try ForwardPlan(config: config, capture: capture, logits: edited ? .all : .none) } catch let error as NeoXError where error.kind == .unknownHook {
            throw CommandFailure("--hooks: \(error.message)")
        }
        // The input first: what a pass will hold is stated (and refused if it cannot fit) before loading.
        let (batch, tokenizerURL) = try readInput(config: config, modelDirectory: directory)
        let residency = modelOptions.residency ?? WeightResidency.automatic(config: config, layers: plan.layers)
        let memory = try MemoryReport.require(config: config, residency: residency, plan: plan, batch: batch.count,
                                              length: batch.first?.count ?? 0, directory: directory)
        let network = try NeoXModel(checkpoint: checkpoint, plan: plan, activation: modelOptions.activation,
                                    allowNonFinite: modelOptions.allowNonFinite, residency: residency)
        for name in network.weights.ignoredTensors { warnIgnored(name, in: directory) }
        let interventions = try interventionOptions.interventions(config: config)
        let loaded = Date()
        _ = try network.validate(tokens: batch)
        var result: ForwardResult? = nil
        var best = Double.infinity
        // Token-blocks: B·T tokens through each of the pass's blocks, for every repeat.
        let tokenCount = batch.reduce(0) { $0 + $1.count }
        let progressLine = ProgressLine.make("run", total: tokenCount * plan.layers * max(1, repeats), unit: "token-blocks", forced: progress)
        let blockDone: ((Int) -> Void)? = progressLine.map { line in { _ in line.advance(tokenCount) } }
        for _ in 0..<max(1, repeats) {
            result = nil   // release the previous pass's activations before the next
            let start = Date()
            do { result = try network.forward(tokens: batch, plan: plan, interventions: interventions, blockDone: blockDone) } catch let error as NeoXError
                where error.kind == .invalidIntervention || error.kind == .unknownHook {
                throw CommandFailure("intervention: \(error.message)")
            }
            best = min(best, Date().timeIntervalSince(start))
        }
        progressLine?.finish()
        var effect: InterventionEffect? = nil
        if edited {
            let clean = try network.forward(tokens: batch, plan: ForwardPlan(config: config, hooks: [], logits: .all))
            effect = InterventionEffect(clean: clean.logits!, edited: result!.logits!, tokens: batch)
        }
        let computed = Date()
        let activations = result!.activations, layersRun = result!.layersRun

        let B = batch.count, T = batch[0].count
        var metadata = [
            "model": directory.path, "hooks": hooks?.description ?? "", "activation": network.activation.rawValue,
            "batch": "\(B)", "length": "\(T)", "format": "neoxprobe run \(NeoXProbeVersion.string)",
            "tokens": "[" + batch.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: ",") + "]",
        ]
        if let tokenizerURL {
            metadata["tokenizer"] = tokenizerURL.lastPathComponent
            metadata["tokenizer_sha256"] = try Self.sha256(of: tokenizerURL)
        }
        if edited { metadata["interventions"] = interventions.map(\.description).joined(separator: "; ") }
        var outURL: URL? = nil
        if let out {
            outURL = URL(fileURLWithPath: out)
            try SafeTensorsWriter.write(activations.byName, to: outURL!, metadata: metadata)
        }
        let written = Date()

        let bytes = activations.byteCount
        func seconds(_ a: Date, _ b: Date) -> String { String(format: "%.2fs", b.timeIntervalSince(a)) }
        if json {
            var object: [String: JSONValue] = [
                "model": JSONValue(directory.path), "batch": JSONValue(B), "length": JSONValue(T),
                "hooks": .array(activations.points.map { point in
                    ["name": JSONValue(point.name), "shape": .array(activations[point]!.shape.map { JSONValue($0) })]
                }),
                "out": outURL.map { JSONValue($0.path) } ?? .null,
                "interventions": .array(interventions.map { JSONValue($0.description) }),
                "forward_seconds": JSONValue(best),
            ]
            if let effect { object["effect"] = effect.json }
            try EvalOutput.printJSON(object)
            return
        }
        print("model   \(directory.path) [\(checkpoint.layout)] \(config.numLayers) layers, d=\(config.hiddenSize), \(config.numHeads) heads, \(config.parallelResidual ? "parallel" : "sequential") residual, \(network.activation.rawValue)")
        print("input   \(B)×\(T) tokens")
        print("memory  \(memory)")
        if let outURL {
            print("hooks   \(activations.count) written to \(outURL.path) (\(String(format: "%.1f", Double(bytes) / 1_048_576)) MiB):")
            for point in activations.points {
                if let tensor = activations[point] { print("        \(point.name) \(tensor.shape)") }
            }
        }
        if let effect {
            print("edits   \(interventions.count): \(interventions.map(\.description).joined(separator: "; "))")
            let loss = { (value: Double?) in value.map { String(format: "%.6f", $0) } ?? "n/a (one position)" }
            print("loss    clean \(loss(effect.cleanLoss)), edited \(loss(effect.editedLoss)) (mean next-token cross-entropy)")
            let at = effect.maxAbsLogitDeltaAt
            print(String(format: "logits  max |Δ| %.6g (sequence %d, position %d, token %d); top-1 changed at %d of %d positions",
                         effect.maxAbsLogitDelta, at.sequence, at.position, at.token, effect.top1Changed, effect.positions))
        }
        print("time    load \(seconds(started, loaded)), forward \(String(format: "%.3fs", best)) (\(String(format: "%.1f", Double(B * T) / best)) tokens/s over \(layersRun) layers\(repeats > 1 ? ", best of \(repeats)" : "")), write \(seconds(computed, written))")
    }

    /// Lowercase hex SHA-256 of a file, read in pieces.
    static func sha256(of url: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var digest = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { digest.update($0) }
        }
        return digest.finish()
    }

    /// The batch from --tokens, --text or --prompt, and the tokenizer that encodes it (for --tokens,
    /// the one that would be used, if any is found: it is what decodes the ids).
    func readInput(config: NeoXConfig, modelDirectory: URL) throws -> ([[Int32]], URL?) {
        if let tokens { return (try TokenFile(argument: tokens).batch(), try? modelOptions.tokenizerOptions.locate(modelDirectory: modelDirectory)) }
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
        return ([ids], url)
    }

    /// `bytes` without leading and trailing ASCII whitespace (space, tab, CR, LF, VT, FF), as
    /// Python's `str.strip()` removes them; a multi-byte character is never cut.
    static func stripped(_ bytes: [UInt8]) -> [UInt8] {
        let isSpace = { (b: UInt8) in b == 0x20 || (0x09...0x0D).contains(b) }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else { return [] }
        return Array(bytes[first...last])
    }
}
