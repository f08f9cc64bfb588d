import Foundation

/// The activation inside the MLP. HF evaluates Pythia with exact erf-GELU (`hidden_act: "gelu"`),
/// while GPT-NeoX trained it with the tanh approximation; researchers may want either.
public enum MLPActivation: String, Sendable, CaseIterable {
    case geluErf = "gelu"
    case geluTanh = "gelu_tanh"
    case relu = "relu"
}

/// The hyper-parameters of a GPT-NeoX model, read from `config.json` as Pythia publishes it
/// (`rotary_pct`, `rotary_emb_base`) or as transformers v5 writes it (`rope_parameters`).
public struct NeoXConfig: Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var intermediateSize: Int
    public var maxPositionEmbeddings: Int
    public var rotaryPct: Double
    public var rotaryBase: Double
    public var parallelResidual: Bool
    public var layerNormEps: Double
    public var activation: MLPActivation
    /// `attention_bias` (transformers ≥ 4.40): false means the QKV and dense layers have no bias.
    public var attentionBias: Bool
    public var tieWordEmbeddings: Bool
    /// `eos_token_id`: the id generation stops at by default (nil when config.json names none).
    public var eosTokenID: Int32?
    /// `bos_token_id`: what `--prepend-bos` puts first (nil when config.json names none; Pythia: 0).
    public var bosTokenID: Int32? = nil

    public init(vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int, intermediateSize: Int,
                maxPositionEmbeddings: Int, rotaryPct: Double, rotaryBase: Double = 10000,
                parallelResidual: Bool = true, layerNormEps: Double = 1e-5,
                activation: MLPActivation = .geluErf, attentionBias: Bool = true,
                tieWordEmbeddings: Bool = false, eosTokenID: Int32? = nil) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.intermediateSize = intermediateSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rotaryPct = rotaryPct
        self.rotaryBase = rotaryBase
        self.parallelResidual = parallelResidual
        self.layerNormEps = layerNormEps
        self.activation = activation
        self.attentionBias = attentionBias
        self.tieWordEmbeddings = tieWordEmbeddings
        self.eosTokenID = eosTokenID
    }

    public var headDim: Int { hiddenSize / numHeads }
    /// HF: `int(head_size * rotary_pct)`: truncation, not rounding.
    public var rotaryDims: Int { Int(Double(headDim) * rotaryPct) }

    /// Reads and validates `config.json`. Anything the engine cannot run is rejected by name.
    public static func load(contentsOf url: URL) throws -> NeoXConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FormatError(.io, "cannot read config: \(error.localizedDescription)", file: url)
        }
        let object = try JSONParsing.object(data, what: "JSON in config", file: url)
        guard let json = object as? [String: Any] else {
            throw FormatError(.malformed, "config is not a JSON object", file: url)
        }
        return try NeoXConfig(json: json, file: url)
    }

    init(json: [String: Any], file: URL) throws {
        func fail(_ message: String, _ kind: FormatError.Kind = .malformed) -> FormatError { FormatError(kind, message, file: file) }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            guard let raw = json[key], !(raw is NSNull) else {
                if let value { return value }
                throw fail("missing required field '\(key)'")
            }
            guard let number = raw as? NSNumber, !isJSONBoolean(raw), number.doubleValue == number.doubleValue.rounded() else {
                throw fail("field '\(key)' must be an integer, got \(raw)")
            }
            // 2^53: beyond it a JSON number is no longer an exact integer (and NSNumber.intValue wraps).
            guard abs(number.doubleValue) < 9_007_199_254_740_992 else {
                throw fail("field '\(key)' = \(raw) is too large to be a model dimension")
            }
            return number.intValue
        }
        func double(_ key: String, in dictionary: [String: Any]? = nil, default value: Double?) throws -> Double? {
            let source = dictionary ?? json
            guard let raw = source[key], !(raw is NSNull) else { return value }
            guard let number = raw as? NSNumber, !isJSONBoolean(raw) else { throw fail("field '\(key)' must be a number, got \(raw)") }
            return number.doubleValue
        }
        func string(_ key: String, in dictionary: [String: Any]? = nil) throws -> String? {
            guard let raw = (dictionary ?? json)[key], !(raw is NSNull) else { return nil }
            guard let text = raw as? String else { throw fail("field '\(key)' must be a string, got \(raw)") }
            return text
        }
        func bool(_ key: String, default value: Bool) throws -> Bool {
            guard let raw = json[key], !(raw is NSNull) else { return value }
            guard let flag = raw as? Bool else { throw fail("field '\(key)' must be true or false, got \(raw)") }
            return flag
        }

        if let modelType = try string("model_type"), modelType != "gpt_neox" {
            throw fail("model_type '\(modelType)' is not supported (only 'gpt_neox')", .unsupported)
        }
        vocabSize = try int("vocab_size")
        hiddenSize = try int("hidden_size")
        numLayers = try int("num_hidden_layers")
        numHeads = try int("num_attention_heads")
        intermediateSize = try int("intermediate_size")
        maxPositionEmbeddings = try int("max_position_embeddings", default: 2048)
        layerNormEps = try double("layer_norm_eps", default: 1e-5)!
        parallelResidual = try bool("use_parallel_residual", default: true)
        attentionBias = try bool("attention_bias", default: true)
        tieWordEmbeddings = try bool("tie_word_embeddings", default: false)
        // A list (newer configs allow several) keeps its first id; null or absent means none. Any other
        // value (a string, a fraction, a boolean, a negative number) is refused: generation would
        // otherwise silently never stop, or stop at the wrong token.
        func tokenID(_ key: String) throws -> Int32? {
            let raw = (json[key] as? [Any])?.first ?? json[key]
            if raw == nil || raw is NSNull { return nil }
            if let number = raw as? NSNumber, !isJSONBoolean(number), let id = Int32(exactly: number.doubleValue), id >= 0 { return id }
            throw fail("\(key) must be a non-negative integer token id (or a list of them, or null), not \(raw!)")
        }
        eosTokenID = try tokenID("eos_token_id")
        bosTokenID = try tokenID("bos_token_id")

        // Rotary: v4 spells it rotary_pct / rotary_emb_base; v5 nests it in rope_parameters.
        // transformers 4.4x also writes the aliases partial_rotary_factor / rope_theta at top level.
        var pct = try double("rotary_pct", default: nil) ?? double("partial_rotary_factor", default: nil)
        var base = try double("rotary_emb_base", default: nil) ?? double("rope_theta", default: nil)
        if let rope = json["rope_parameters"], !(rope is NSNull) {
            guard let parameters = rope as? [String: Any] else { throw fail("rope_parameters must be an object") }
            if let type = try string("rope_type", in: parameters), type != "default" {
                throw fail("rope_parameters.rope_type '\(type)' is not supported (only 'default')", .unsupported)
            }
            pct = try double("partial_rotary_factor", in: parameters, default: pct)
            base = try double("rope_theta", in: parameters, default: base)
        }
        if let scaling = json["rope_scaling"], !(scaling is NSNull) {
            throw fail("rope_scaling \(scaling) is not supported", .unsupported)
        }
        rotaryPct = pct ?? 0.25
        rotaryBase = base ?? 10000

        let hiddenActName = try string("hidden_act") ?? "gelu"
        switch hiddenActName {
        case "gelu": activation = .geluErf
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": activation = .geluTanh
        case "relu": activation = .relu
        default: throw fail("hidden_act '\(hiddenActName)' is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)", .unsupported)
        }

        for (name, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_hidden_layers", numLayers),
                              ("num_attention_heads", numHeads), ("intermediate_size", intermediateSize),
                              ("max_position_embeddings", maxPositionEmbeddings)] where value <= 0 {
            throw fail("'\(name)' must be positive, got \(value)")
        }
        // The engine builds its rotary tables for every position up front: 2^20 positions (Pythia
        // uses 2048) keeps them within a few hundred MiB; 5·10⁸ would not fit any machine.
        guard maxPositionEmbeddings <= 1 << 20 else {
            throw fail("max_position_embeddings \(maxPositionEmbeddings) is above the \(1 << 20) positions this engine builds rotary tables for", .unsupported)
        }
        guard hiddenSize % numHeads == 0 else {
            throw fail("hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numHeads)")
        }
        guard rotaryPct >= 0, rotaryPct <= 1 else { throw fail("rotary_pct \(rotaryPct) must lie in [0, 1]") }
        guard rotaryDims % 2 == 0 else {
            throw fail("rotary dimensions int(\(headDim)·\(rotaryPct)) = \(rotaryDims) must be even")
        }
        guard rotaryBase > 0 else { throw fail("rotary base \(rotaryBase) must be positive") }
        guard layerNormEps > 0 else { throw fail("layer_norm_eps must be positive") }
    }
}

/// Whether a `JSONSerialization` value is a JSON `true`/`false`. `value is Bool` cannot tell: on Linux
/// an NSNumber holding 0, 1 or 1.0 also casts to Bool, which would reject `"num_attention_heads": 1`
/// or a safetensors offset of 0. JSON booleans are the NSNumbers of objCType "c".
func isJSONBoolean(_ value: Any) -> Bool {
    if value is NSNumber, let number = value as? NSNumber { return String(cString: number.objCType) == "c" }
    return type(of: value) == Bool.self
}
