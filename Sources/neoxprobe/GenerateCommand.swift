import ArgumentParser
import Evaluation
import Formats
import Foundation
import NeoX
import Tokenizers

/// `neoxprobe generate`: continues prompts with the KV-cache decoder, greedily or by sampling.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue prompts (text or token ids) with the model: greedy or sampled, with a KV cache.",
        discussion: """
        Greedy decoding (the default) equals Hugging Face generate(do_sample=False) on each prompt alone. With \
        --tokens @FILE every line is one prompt; lines may differ in length and are decoded as one batch without \
        padding (each keeps its own positions). Generation of a sequence stops after the model's eos_token_id \
        (unless --ignore-eos), after a --stop string appears in its decoded continuation, or after --max-new-tokens.
        Sampling (--temperature/--top-k/--top-p) applies temperature, then top-k, then top-p as HF does; it is \
        reproducible from --seed (default 0): sequence b draws from SplitMix64 seeded with seed + (b+1)·0x9E3779B97F4A7C15, \
        one 64-bit draw per token. logprobs are the model's own log-softmax (temperature 1, unfiltered) of each \
        generated token.
        With --hooks and --out, the activations of every position (prompt and generated, the last generated token \
        included) are written as safetensors: 'seq<b>.<hook>' of shape [1, T_b, d] for sequence b.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "The prompt text.")
    var prompt: String?

    @Option(name: .long, help: "A UTF-8 text file to use as the prompt.")
    var text: String?

    @Option(name: .long, help: "@FILE with one prompt of whitespace-separated token ids per line (lengths may differ), or the ids inline.")
    var tokens: String?

    @Option(name: .long, help: "New tokens per prompt, at most.")
    var maxNewTokens: Int

    @Flag(name: .long, help: "Greedy decoding (the default).")
    var greedy = false

    @Option(name: .long, help: "Sample with this temperature (> 0).")
    var temperature: Double?

    @Option(name: .long, help: "Sample only among the K most likely tokens (0 = all).")
    var topK: Int?

    @Option(name: .long, help: "Sample only from the smallest set of tokens whose probability reaches P (nucleus; 1 = all).")
    var topP: Double?

    @Option(name: .long, help: "Seed of the sampling generator (default 0).")
    var seed: UInt64?

    @Option(name: .long, help: "Stop a sequence once this text appears in its continuation (repeatable).")
    var stop: [String] = []

    @Flag(name: .long, help: "Do not stop at the model's eos_token_id.")
    var ignoreEos = false

    @Option(name: .long, help: ArgumentHelp("Hooks to capture for every position: comma-separated glob patterns.", valueName: "patterns"),
            transform: HookPatterns.parse)
    var hooks: HookPatterns?

    @Option(name: .long, help: "Output .safetensors file for --hooks (written atomically).")
    var out: String?

    @Flag(name: .long, help: "Print one JSON object (sequences, provenance) instead of text.")
    var json = false

    /// More new tokens than any Pythia context holds is a mistake.
    static let maxNewTokensLimit = 1 << 20

    var samples: Bool { temperature != nil || topK != nil || topP != nil || seed != nil }

    func validate() throws {
        if [prompt != nil, text != nil, tokens != nil].filter({ $0 }).count != 1 {
            throw ValidationError("give exactly one of --prompt TEXT, --text FILE or --tokens @FILE")
        }
        guard (0...Self.maxNewTokensLimit).contains(maxNewTokens) else {
            throw ValidationError("--max-new-tokens must be between 0 and \(Self.maxNewTokensLimit), got \(maxNewTokens)")
        }
        if greedy && samples { throw ValidationError("--greedy excludes --temperature, --top-k, --top-p and --seed") }
        if let temperature, !(temperature > 0 && temperature.isFinite) {
            throw ValidationError("--temperature must be positive, got \(temperature)")
        }
        if let topK, topK < 0 { throw ValidationError("--top-k must be 0 (off) or positive, got \(topK)") }
        if let topP, !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must lie in (0, 1], got \(topP)") }
        if (hooks == nil) != (out == nil) { throw ValidationError("--hooks and --out go together") }
        if stop.contains("") { throw ValidationError("--stop needs a non-empty string") }
    }

    func run() throws {
        let start = DispatchTime.now()
        let setup = try modelOptions.loadEvalSetup()
        let model = setup.model, config = model.config
        var capture: [HookPoint] = []
        if let hooks {
            do { _ = try ForwardPlan(config: config, capture: hooks.filter) } catch let error as NeoXError where error.kind == .unknownHook {
                throw CommandFailure("--hooks: \(error.message)")
            }
            // The decoder gives the residual-stream hooks, ln_final.hook_normalized and logits.
            let capturable = HookPoint.all(for: config).filter(Decoder.canCapture)
            if let pattern = hooks.filter.unmatchedPatterns(in: capturable).first {
                throw CommandFailure("--hooks: '\(pattern)' matches no hook generate can capture "
                    + "(the residual stream blocks.L.hook_resid_pre/attn_out/mlp_out/resid_post, ln_final.hook_normalized, logits; use run for the others)")
            }
            capture = hooks.filter.select(capturable)
        }
        let prompts = try readPrompts(tokenizer: setup.tokenizer)
        for (b, prompt) in prompts.enumerated() where prompt.count > config.maxPositionEmbeddings {
            throw CommandFailure("prompt \(b + 1) is \(prompt.count) tokens, longer than the model's context of \(config.maxPositionEmbeddings) (max_position_embeddings)")
        }
        let loaded = WallClock.seconds(since: start)

        let sampling: Sampling = samples
            ? .random(SamplingParameters(temperature: temperature ?? 1, topK: topK ?? 0, topP: topP ?? 1, seed: seed ?? 0))
            : .greedy
        let tokenizer = setup.tokenizer, stops = stop
        var options = GenerationOptions(maxNewTokens: maxNewTokens, sampling: sampling,
                                        stopTokens: ignoreEos ? [] : Set([config.eosTokenID].compactMap { $0 }), capture: capture)
        if !stops.isEmpty {
            options.stopCondition = { _, generated in
                guard let text = try? tokenizer.decode(generated) else { return false }
                return stops.contains { text.contains($0) }
            }
        }
        var captured: [String: [Float]] = [:]
        let d = config.hiddenSize
        let began = DispatchTime.now()
        let sequences = try model.generate(prompts: prompts, options: options) { hook, segments, values in
            let width = hook == .logits ? config.vocabSize : d
            for s in segments {
                captured["seq\(s.sequence).\(hook.name)", default: []] += values[(s.row * width)..<((s.row + s.count) * width)]
            }
        }
        let seconds = WallClock.seconds(since: began)
        let generatedCount = sequences.reduce(0) { $0 + $1.tokens.count }

        if let out {
            var tensors: [String: Tensor] = [:]
            for (name, values) in captured {
                let width = name.hasSuffix(".logits") ? config.vocabSize : d
                tensors[name] = Tensor(shape: [1, values.count / width, width], data: values)
            }
            try SafeTensorsWriter.write(tensors, to: URL(fileURLWithPath: out), metadata: [
                "model": setup.directory.path, "hooks": hooks?.description ?? "", "activation": model.activation.rawValue,
                "prompt_lengths": prompts.map { String($0.count) }.joined(separator: ","),
                "generated_lengths": sequences.map { String($0.tokens.count) }.joined(separator: ","),
                "format": "neoxprobe generate \(NeoXProbeVersion.string)",
            ])
        }

        if json {
            var object = setup.provenance(command: "generate")
            object["model_spec"] = JSONValue(modelOptions.model)
            object["max_new_tokens"] = JSONValue(maxNewTokens)
            object["sampling"] = samplingDescription(sampling)
            object["stop_tokens"] = .array(options.stopTokens.sorted().map { JSONValue(Int($0)) })
            object["stop_strings"] = .array(stops.map { JSONValue($0) })
            object["sequences"] = .array(try sequences.map { sequence in
                [
                    "prompt_tokens": .array(sequence.promptTokens.map { JSONValue(Int($0)) }),
                    "tokens": .array(sequence.tokens.map { JSONValue(Int($0)) }),
                    "logprobs": .array(sequence.logprobs.map { JSONValue($0) }),
                    "text": JSONValue(try tokenizer.decode(sequence.tokens)),
                    "stop_reason": JSONValue(sequence.stopReason.rawValue),
                ]
            })
            if let out { object["activations"] = ["file": JSONValue(out), "hooks": .array(capture.map { JSONValue($0.name) })] }
            object["seconds"] = ["load": JSONValue(loaded), "generate": JSONValue(seconds)]
            object["generated_tokens"] = JSONValue(generatedCount)
            object["tokens_per_second"] = JSONValue(Double(generatedCount) / max(seconds, 1e-9))
            try EvalOutput.printJSON(object)
        } else {
            for (b, sequence) in sequences.enumerated() {
                if sequences.count > 1 { print("=== sequence \(b + 1) (\(sequence.promptTokens.count) prompt tokens, stop: \(sequence.stopReason.rawValue))") }
                print(try tokenizer.decode(sequence.tokens))
            }
            FileHandle.standardError.write(Data(String(format: "generated %d tokens in %.3f s (%.1f tokens/s)\n",
                                                       generatedCount, seconds, Double(generatedCount) / max(seconds, 1e-9)).utf8))
        }
    }

    private func samplingDescription(_ sampling: Sampling) -> JSONValue {
        switch sampling {
        case .greedy: return ["method": "greedy"]
        case .random(let p):
            return ["method": "sample", "temperature": JSONValue(p.temperature), "top_k": JSONValue(p.topK), "top_p": JSONValue(p.topP),
                    "seed": JSONValue(String(p.seed)), "rng": "SplitMix64, sequence b seeded with seed + (b+1)*0x9E3779B97F4A7C15"]
        }
    }

    /// The prompts from --prompt, --text or --tokens.
    private func readPrompts(tokenizer: any TextTokenizer) throws -> [[Int32]] {
        if let prompt {
            let ids = try tokenizer.encode(prompt)
            guard !ids.isEmpty else { throw CommandFailure("--prompt encodes to no tokens (empty input)") }
            return [ids]
        }
        if let text {
            guard let data = FileManager.default.contents(atPath: text) else { throw CommandFailure("cannot read text file \(text)") }
            let ids: [Int32]
            do { ids = try tokenizer.encode(utf8: Array(data)) } catch TokenizerError.invalidUTF8(_, let offset) {
                throw TokenizerError.invalidUTF8(input: text, offset: offset)
            }
            guard !ids.isEmpty else { throw CommandFailure("\(text): the text encodes to no tokens (empty input)") }
            return [ids]
        }
        return try TokenFile(argument: tokens!).rows.map(\.ids)   // ragged lines: one prompt each
    }
}
