import Formats

/// The per-block hook sites, named, shaped and defined as TransformerLens's `HookedTransformer`
/// names them for GPT-NeoX (weight processing off, i.e. `from_pretrained_no_processing`):
///
/// | site (`blocks.L.` + raw value) | shape           | value                                                             |
/// |--------------------------------|-----------------|-------------------------------------------------------------------|
/// | `hook_resid_pre`               | `[B, T, d]`     | residual stream entering block L (embeddings for L = 0)           |
/// | `ln1.hook_scale`               | `[B, T, 1]`     | √(var(x) + eps) of the attention LayerNorm's input, per token     |
/// | `ln1.hook_normalized`          | `[B, T, d]`     | (x − mean)/scale, *before* the LayerNorm's weight and bias (TL 3.x) |
/// | `attn.hook_q`, `hook_k`, `hook_v` | `[B, T, H, dh]` | the projections (bias included), before rotary                 |
/// | `attn.hook_rot_q`, `hook_rot_k` | `[B, T, H, dh]` | q and k after rotary (the first `rotary_dims` dims rotate)       |
/// | `attn.hook_attn_scores`        | `[B, H, T, T]`  | q·kᵀ/√dh, masked (future) keys = −∞ (TransformerLens's `IGNORE`)  |
/// | `attn.hook_pattern`            | `[B, H, T, T]`  | softmax of the scores over keys (0 at masked keys)                |
/// | `attn.hook_z`                  | `[B, T, H, dh]` | pattern · v per head, the input of `dense`                        |
/// | `attn.hook_result`             | `[B, T, H, d]`  | each head's share of `dense` (z_h · W_O,hᵀ), before the sum and bias |
/// | `hook_attn_out`                | `[B, T, d]`     | attention output after `dense`, bias included                     |
/// | `hook_resid_mid`               | `[B, T, d]`     | `resid_pre + attn_out` — **sequential-residual models only**      |
/// | `ln2.hook_scale`, `ln2.hook_normalized` | as ln1 | the MLP LayerNorm (reading `resid_pre` in parallel models, `resid_mid` otherwise) |
/// | `mlp.hook_pre`                 | `[B, T, ff]`    | `dense_h_to_4h` output, before the non-linearity                  |
/// | `mlp.hook_post`                | `[B, T, ff]`    | after the non-linearity (the MLP neurons)                         |
/// | `hook_mlp_out`                 | `[B, T, d]`     | MLP output after `dense_4h_to_h`, bias included                   |
/// | `hook_resid_post`              | `[B, T, d]`     | residual stream leaving block L (raw, before any final LayerNorm) |
///
/// Parallel-residual models (all Pythia) have no `hook_resid_mid`: the MLP reads `resid_pre`,
/// not `resid_pre + attn_out`, so there is no intermediate residual to report; TransformerLens
/// also omits it for `parallel_attn_mlp` models. The engine neither lists nor emits it there.
/// Cases are in the order the forward pass produces them.
public enum BlockHook: String, Sendable, CaseIterable, Hashable {
    case residPre = "hook_resid_pre"
    case ln1Scale = "ln1.hook_scale"
    case ln1Normalized = "ln1.hook_normalized"
    case q = "attn.hook_q"
    case k = "attn.hook_k"
    case v = "attn.hook_v"
    case rotQ = "attn.hook_rot_q"
    case rotK = "attn.hook_rot_k"
    case attnScores = "attn.hook_attn_scores"
    case pattern = "attn.hook_pattern"
    case z = "attn.hook_z"
    case result = "attn.hook_result"
    case attnOut = "hook_attn_out"
    case residMid = "hook_resid_mid"
    case ln2Scale = "ln2.hook_scale"
    case ln2Normalized = "ln2.hook_normalized"
    case mlpPre = "mlp.hook_pre"
    case mlpPost = "mlp.hook_post"
    case mlpOut = "hook_mlp_out"
    case residPost = "hook_resid_post"

    /// The sites a block of this residual kind emits, in the order the forward pass produces them.
    public static func sites(parallelResidual: Bool) -> [BlockHook] {
        parallelResidual ? allCases.filter { $0 != .residMid } : allCases
    }

    /// The residual-stream sites (`[B, T, d]` reads and writes of the residual): resid_pre,
    /// attn_out, (resid_mid,) mlp_out, resid_post — what the backward pass and the decoder give.
    public static func residualSites(parallelResidual: Bool) -> [BlockHook] {
        parallelResidual ? [.residPre, .attnOut, .mlpOut, .residPost] : [.residPre, .attnOut, .residMid, .mlpOut, .residPost]
    }

    /// True for the residual-stream sites (see `residualSites`).
    public var isResidual: Bool { [.residPre, .attnOut, .residMid, .mlpOut, .residPost].contains(self) }
}

/// One activation the forward pass can hand out, typed: `.block(3, .residPost)` is
/// TransformerLens's `blocks.3.hook_resid_post`. `name` and `init?(name:)` convert to and from
/// the string names that files, globs and Python use; `shape(config:batch:length:)` gives its shape.
///
/// | point                 | name                         | shape        |
/// |-----------------------|------------------------------|--------------|
/// | `.embed`              | `hook_embed`                 | `[B, T, d]` (token embeddings; = `blocks.0.hook_resid_pre` unless edited) |
/// | `.block(L, site)`     | `blocks.L.<site>`            | see `BlockHook` |
/// | `.lnFinalScale`       | `ln_final.hook_scale`        | `[B, T, 1]`  |
/// | `.lnFinalNormalized`  | `ln_final.hook_normalized`   | `[B, T, d]` ((x − mean)/scale, before the final LayerNorm's weight and bias; `NeoXModel.unembed` applies them) |
/// | `.logits`             | `logits`                     | `[B, T, V]`  |
public enum HookPoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    case embed
    case block(Int, BlockHook)
    case lnFinalScale
    case lnFinalNormalized
    case logits

    public static func residPre(_ layer: Int) -> HookPoint { .block(layer, .residPre) }
    public static func attnOut(_ layer: Int) -> HookPoint { .block(layer, .attnOut) }
    public static func residMid(_ layer: Int) -> HookPoint { .block(layer, .residMid) }
    public static func mlpOut(_ layer: Int) -> HookPoint { .block(layer, .mlpOut) }
    public static func residPost(_ layer: Int) -> HookPoint { .block(layer, .residPost) }

    /// The TransformerLens name.
    public var name: String {
        switch self {
        case .embed: return "hook_embed"
        case .block(let layer, let site): return "blocks.\(layer).\(site.rawValue)"
        case .lnFinalScale: return "ln_final.hook_scale"
        case .lnFinalNormalized: return "ln_final.hook_normalized"
        case .logits: return "logits"
        }
    }

    public var description: String { name }

    /// Parses a TransformerLens name; nil for anything the engine does not emit.
    public init?(name: String) {
        switch name {
        case "hook_embed": self = .embed
        case "ln_final.hook_scale": self = .lnFinalScale
        case "ln_final.hook_normalized": self = .lnFinalNormalized
        case "logits": self = .logits
        default:
            guard name.hasPrefix("blocks.") else { return nil }
            let rest = name.dropFirst("blocks.".count)
            guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0,
                  String(layer) == rest[..<dot], let site = BlockHook(rawValue: String(rest[rest.index(after: dot)...])) else { return nil }
            self = .block(layer, site)
        }
    }

    /// The block index, nil for `hook_embed`, `ln_final…` and `logits`.
    public var layer: Int? {
        if case .block(let layer, _) = self { return layer }
        return nil
    }

    /// The shape this hook has for a batch of B sequences of T tokens (TransformerLens's shapes).
    public func shape(config: NeoXConfig, batch B: Int, length T: Int) -> [Int] {
        let d = config.hiddenSize, H = config.numHeads, dh = config.headDim
        switch self {
        case .embed, .lnFinalNormalized: return [B, T, d]
        case .lnFinalScale: return [B, T, 1]
        case .logits: return [B, T, config.vocabSize]
        case .block(_, let site):
            switch site {
            case .ln1Scale, .ln2Scale: return [B, T, 1]
            case .q, .k, .v, .rotQ, .rotK, .z: return [B, T, H, dh]
            case .attnScores, .pattern: return [B, H, T, T]
            case .result: return [B, T, H, d]
            case .mlpPre, .mlpPost: return [B, T, config.intermediateSize]
            default: return [B, T, d]
            }
        }
    }

    /// The axes that run over tokens: batch and position (`[0, 1]`; `[0, 2]` for the
    /// `[B, H, T, T]` attention hooks, whose axis 2 is the query position). Mean ablation averages over them.
    public var tokenAxes: [Int] {
        if case .block(_, let site) = self, site == .attnScores || site == .pattern { return [0, 2] }
        return [0, 1]
    }

    /// Production order: embeddings, block by block (sites in forward order), then the final LayerNorm, then logits.
    public static func < (a: HookPoint, b: HookPoint) -> Bool { a.order < b.order }

    private var order: (Int, Int) {
        switch self {
        case .embed: return (-1, 0)
        case .block(let layer, let site): return (layer, BlockHook.allCases.firstIndex(of: site)!)
        case .lnFinalScale: return (Int.max, 0)
        case .lnFinalNormalized: return (Int.max, 1)
        case .logits: return (Int.max, 2)
        }
    }

    /// Every hook a model with this config emits (for its first `layers` blocks), in production order.
    public static func all(for config: NeoXConfig, layers: Int? = nil) -> [HookPoint] {
        let sites = BlockHook.sites(parallelResidual: config.parallelResidual)
        var points: [HookPoint] = [.embed]
        for layer in 0..<(layers ?? config.numLayers) { points += sites.map { .block(layer, $0) } }
        return points + [.lnFinalScale, .lnFinalNormalized, .logits]
    }
}

/// Which hooks to capture: a comma-separated list of glob patterns matched against whole hook
/// names. `*` matches any run of characters, dots included (`*` = everything,
/// `blocks.*.hook_resid_post` = every layer's residual, `blocks.3.*` = all of block 3);
/// `?` matches one character. Whitespace around list items is ignored.
public struct HookFilter: Sendable, Equatable, CustomStringConvertible {
    public let patterns: [String]

    /// Matches nothing.
    public static let none = HookFilter(patterns: [])
    /// Matches every hook, logits included.
    public static let all = HookFilter(patterns: ["*"])

    public init(patterns: [String]) {
        self.patterns = patterns.map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }

    /// Parses `"blocks.*.hook_resid_post, ln_final.*"`.
    public init(_ list: String) {
        self.init(patterns: list.split(separator: ",").map(String.init))
    }

    /// Exactly these hooks.
    public init(_ points: [HookPoint]) {
        self.init(patterns: points.map(\.name))
    }

    public var isEmpty: Bool { patterns.isEmpty }
    public var description: String { patterns.joined(separator: ",") }

    public func matches(_ name: String) -> Bool {
        let text = Array(name.utf8)
        return patterns.contains { Self.glob(Array($0.utf8), text) }
    }

    public func matches(_ point: HookPoint) -> Bool { matches(point.name) }

    /// The names among `names` this filter selects, in their original order.
    public func select(_ names: [String]) -> [String] { names.filter(matches) }

    /// The points among `points` this filter selects, in their original order.
    public func select(_ points: [HookPoint]) -> [HookPoint] { points.filter(matches) }

    /// The patterns that match none of `points`: a mistyped pattern must be an error, never a
    /// silently smaller capture.
    public func unmatchedPatterns(in points: [HookPoint]) -> [String] {
        let names = points.map { Array($0.name.utf8) }
        return patterns.filter { pattern in
            let bytes = Array(pattern.utf8)
            return !names.contains { Self.glob(bytes, $0) }
        }
    }

    /// Iterative glob with single-star backtracking: linear in practice, no recursion.
    static func glob(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        let star = UInt8(ascii: "*"), any = UInt8(ascii: "?")
        var p = 0, t = 0, starP = -1, starT = 0
        while t < text.count {
            if p < pattern.count && (pattern[p] == any || pattern[p] == text[t]) {
                p += 1; t += 1
            } else if p < pattern.count && pattern[p] == star {
                starP = p; starT = t; p += 1
            } else if starP >= 0 {
                p = starP + 1; starT += 1; t = starT
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == star { p += 1 }
        return p == pattern.count
    }
}

/// Captured activations by hook, indexable as TransformerLens's `ActivationCache` is:
/// `cache[.residPost, layer: 3]`, `cache[.residPost(3)]` or `cache["blocks.3.hook_resid_post"]`.
public struct ActivationCache: Sendable, Equatable {
    public private(set) var tensors: [HookPoint: Tensor]

    public init(_ tensors: [HookPoint: Tensor] = [:]) { self.tensors = tensors }

    public subscript(_ point: HookPoint) -> Tensor? {
        get { tensors[point] }
        set { tensors[point] = newValue }
    }

    public subscript(_ site: BlockHook, layer layer: Int) -> Tensor? { tensors[.block(layer, site)] }

    /// By TransformerLens name; nil for a name that is not captured (or not a hook).
    public subscript(_ name: String) -> Tensor? { HookPoint(name: name).flatMap { tensors[$0] } }

    /// The captured hooks in production order.
    public var points: [HookPoint] { tensors.keys.sorted() }
    public var names: [String] { points.map(\.name) }
    public var count: Int { tensors.count }
    public var isEmpty: Bool { tensors.isEmpty }

    /// Tensors keyed by name, as files (safetensors) store them.
    public var byName: [String: Tensor] { Dictionary(uniqueKeysWithValues: tensors.map { ($0.key.name, $0.value) }) }

    /// Bytes of fp32 data held.
    public var byteCount: Int { tensors.values.reduce(0) { $0 + $1.data.count * MemoryLayout<Float>.size } }
}

fileprivate extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
