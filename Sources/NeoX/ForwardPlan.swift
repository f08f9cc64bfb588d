import Formats

/// Which logits a forward pass should compute. Unembedding costs 2·V·d FLOPs per row
/// (V ≈ 50k), so ask only for what you need.
public enum LogitsRequest: Sendable, Equatable {
    /// No logits (the default): the pass stops after the last layer a requested hook needs.
    case none
    /// Every position: `ForwardResult.logits` has shape `[B, T, V]`.
    case all
    /// Only the listed positions of each sequence (`positions[b]` for sequence b, any order,
    /// repeats allowed; `positions.count` must equal B). `ForwardResult.logits` has shape `[N, V]`,
    /// N = total count, rows in order: sequence 0's positions as listed, then sequence 1's, …
    case positions([[Int]])
}

/// What a forward pass computes, decided from the config alone before any weight is read: which
/// hooks it emits, how many blocks it runs, whether it needs the final LayerNorm and the
/// unembedding. Loading uses it to read only the blocks the pass will run (`NeoXModel(checkpoint:plan:)`),
/// and `forward` follows it; neither re-derives the other's decisions.
public struct ForwardPlan: Sendable, Equatable {
    /// The hooks the pass emits, in production order.
    public let hooks: [HookPoint]
    public let logits: LogitsRequest
    /// Blocks `0..<layers` run; the pass stops after the last one a hook (or the final LayerNorm) needs.
    public let layers: Int
    /// The final LayerNorm runs (for `ln_final.hook_scale`, `ln_final.hook_normalized` or any logits).
    public let runsFinalNorm: Bool
    /// Logits of some kind are computed, so the model must hold `embed_out`.
    public let needsUnembedding: Bool

    /// Plans the hooks `capture` selects. Every pattern must match at least one hook of this
    /// model, so a mistyped pattern is an error rather than a silently smaller capture.
    public init(config: NeoXConfig, capture: HookFilter, logits: LogitsRequest = .none) throws {
        let available = HookPoint.all(for: config)
        if let unmatched = capture.unmatchedPatterns(in: available).first {
            let hint = config.parallelResidual && unmatched.contains("resid_mid")
                ? "; parallel-residual models have no hook_resid_mid" : ""
            throw NeoXError(.unknownHook, "hook pattern '\(unmatched)' matches none of this model's hooks "
                + "(\(HookPoint.embed.name), \(HookPoint.residPost(0).name), \(HookPoint.block(0, .pattern).name), "
                + "\(HookPoint.lnFinalNormalized.name), \(HookPoint.logits.name), …)\(hint)")
        }
        try self.init(config: config, hooks: capture.select(available), logits: logits)
    }

    /// Plans exactly `hooks` (any order, repeats ignored).
    public init(config: NeoXConfig, hooks: [HookPoint], logits: LogitsRequest = .none) throws {
        let sites = BlockHook.sites(parallelResidual: config.parallelResidual)
        for point in hooks {
            if case .block(let layer, let site) = point, layer >= config.numLayers || !sites.contains(site) {
                let why = layer >= config.numLayers ? "the model has \(config.numLayers) blocks"
                                                    : "parallel-residual models have no hook_resid_mid"
                throw NeoXError(.unknownHook, "hook '\(point.name)' does not exist in this model: \(why)")
            }
        }
        self.hooks = Array(Set(hooks)).sorted()
        self.logits = logits
        needsUnembedding = self.hooks.contains(.logits) || logits != .none
        runsFinalNorm = needsUnembedding || self.hooks.contains(.lnFinalNormalized) || self.hooks.contains(.lnFinalScale)
        layers = runsFinalNorm ? config.numLayers : (self.hooks.compactMap(\.layer).max().map { $0 + 1 } ?? 0)
    }

    /// Nothing to compute: no hooks, no logits.
    public var isEmpty: Bool { hooks.isEmpty && logits == .none }
}
