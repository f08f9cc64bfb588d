import Formats

/// One gradient the backward pass can hand out: a parameter's (by its Hugging Face tensor name,
/// shaped as the parameter) or an activation's (by its hook; named as TransformerLens names
/// activation gradients, `blocks.3.hook_resid_post_grad`, shape `[B, T, d]`).
public enum GradientPoint: Hashable, Sendable, CustomStringConvertible {
    case parameter(String)
    case activation(HookPoint)

    public var name: String {
        switch self {
        case .parameter(let name): return name
        case .activation(let point): return point.name + "_grad"
        }
    }

    public var description: String { name }
}

/// What a backward pass keeps, decided from the config alone: which parameter gradients and which
/// activation gradients. Everything else is computed only as far as these need (weight-gradient
/// products of parameters nobody asked for are skipped; the pass stops below the lowest block asked for).
public struct GradientPlan: Sendable, Equatable {
    /// Requested parameter names, in `NeoXModel.parameterNames` order.
    public let parameters: [String]
    /// Requested activation-gradient hooks, in production order.
    public let hooks: [HookPoint]
    /// Blocks `lowestLayer..<numLayers` are differentiated (numLayers: only the final LayerNorm and unembedding).
    public let lowestLayer: Int

    /// Every hook whose gradient the backward can give: the residual-stream block sites and `ln_final.hook_normalized`.
    public static func gradientHooks(for config: NeoXConfig) -> [HookPoint] {
        let sites = BlockHook.residualSites(parallelResidual: config.parallelResidual)
        return (0..<config.numLayers).flatMap { layer in sites.map { HookPoint.block(layer, $0) } } + [.lnFinalNormalized]
    }

    /// Plans the parameters and hooks the globs select (`*` crosses dots; a hook pattern may name
    /// the hook or its `_grad` name). Every pattern must match something of this model.
    public init(config: NeoXConfig, parameters: HookFilter, hooks: HookFilter) throws {
        let names = NeoXModel.parameterNames(for: config)
        for pattern in parameters.patterns where !names.contains(where: { HookFilter(patterns: [pattern]).matches($0) }) {
            throw NeoXError(.unknownParameter, "parameter pattern '\(pattern)' matches none of this model's parameters (\(names[0]), \(names[1]), …)")
        }
        let points = Self.gradientHooks(for: config)
        for pattern in hooks.patterns {
            let filter = HookFilter(patterns: [pattern])
            if !points.contains(where: { filter.matches($0.name) || filter.matches($0.name + "_grad") }) {
                throw NeoXError(.unknownHook, "hook pattern '\(pattern)' matches none of this model's activation gradients (\(points[0].name)_grad, …)")
            }
        }
        try self.init(config: config, parameters: names.filter(parameters.matches),
                  hooks: points.filter { hooks.matches($0.name) || hooks.matches($0.name + "_grad") })
    }

    /// Plans exactly these (names must be parameter names; hooks must be gradient hooks).
    public init(config: NeoXConfig, parameters: [String], hooks: [HookPoint]) throws {
        let names = NeoXModel.parameterNames(for: config), points = Self.gradientHooks(for: config)
        for name in parameters where !names.contains(name) {
            throw NeoXError(.unknownParameter, "'\(name)' is not a parameter of this model")
        }
        for point in hooks where !points.contains(point) {
            throw NeoXError(.unknownHook, "hook '\(point.name)' has no gradient in this model")
        }
        let wanted = Set(parameters)
        self.parameters = names.filter(wanted.contains)
        self.hooks = Array(Set(hooks)).sorted()
        let parameterLayers = self.parameters.map { name -> Int in
            if name == "gpt_neox.embed_in.weight" { return 0 }
            return NeoXModel.layer(ofParameter: name) ?? config.numLayers
        }
        lowestLayer = (parameterLayers + self.hooks.map { $0.layer ?? config.numLayers }).min() ?? config.numLayers
    }

    /// Every parameter and every activation gradient.
    public static func all(for config: NeoXConfig) -> GradientPlan {
        try! GradientPlan(config: config, parameters: NeoXModel.parameterNames(for: config), hooks: gradientHooks(for: config))
    }
}

extension NeoXModel {
    /// The parameter names of block L's tensors, without the `gpt_neox.layers.L.` prefix, in HF order.
    static func blockParameterSuffixes(attentionBias: Bool) -> [String] {
        ["input_layernorm.weight", "input_layernorm.bias", "post_attention_layernorm.weight", "post_attention_layernorm.bias",
         "attention.query_key_value.weight"] + (attentionBias ? ["attention.query_key_value.bias"] : [])
            + ["attention.dense.weight"] + (attentionBias ? ["attention.dense.bias"] : [])
            + ["mlp.dense_h_to_4h.weight", "mlp.dense_h_to_4h.bias", "mlp.dense_4h_to_h.weight", "mlp.dense_4h_to_h.bias"]
    }

    /// Every trainable parameter's Hugging Face name, in `named_parameters()` order (a tied model
    /// has no separate `embed_out.weight`: its gradient is part of `gpt_neox.embed_in.weight`'s).
    public static func parameterNames(for config: NeoXConfig) -> [String] {
        let suffixes = blockParameterSuffixes(attentionBias: config.attentionBias)
        return ["gpt_neox.embed_in.weight"]
            + (0..<config.numLayers).flatMap { L in suffixes.map { "gpt_neox.layers.\(L).\($0)" } }
            + ["gpt_neox.final_layer_norm.weight", "gpt_neox.final_layer_norm.bias"]
            + (config.tieWordEmbeddings ? [] : ["embed_out.weight"])
    }

    /// The block a `gpt_neox.layers.L.…` name belongs to.
    static func layer(ofParameter name: String) -> Int? {
        let parts = name.split(separator: ".")
        guard parts.count > 3, parts[0] == "gpt_neox", parts[1] == "layers" else { return nil }
        return Int(parts[2])
    }
}
