import Formats

/// The per-block hook sites, named and defined as TransformerLens names them:
///
/// | site (`blocks.L.` + raw value) | value (shape `[B, T, d]`)                                       |
/// |--------------------------------|------------------------------------------------------------------|
/// | `hook_resid_pre`               | residual stream entering block L (embeddings for L = 0)          |
/// | `hook_attn_out`                | attention output after `dense`, bias included                    |
/// | `hook_resid_mid`               | `resid_pre + attn_out` — **sequential-residual models only**     |
/// | `hook_mlp_out`                 | MLP output after `dense_4h_to_h`, bias included                  |
/// | `hook_resid_post`              | residual stream leaving block L (raw, before any final LayerNorm)|
///
/// Parallel-residual models (all Pythia) have no `hook_resid_mid`: the MLP reads `resid_pre`,
/// not `resid_pre + attn_out`, so there is no intermediate residual to report; TransformerLens
/// also omits it for `parallel_attn_mlp` models. The engine neither lists nor emits it there.
public enum BlockHook: String, Sendable, CaseIterable, Hashable {
    case residPre = "hook_resid_pre"
    case attnOut = "hook_attn_out"
    case residMid = "hook_resid_mid"
    case mlpOut = "hook_mlp_out"
    case residPost = "hook_resid_post"

    /// The sites a block of this residual kind emits, in the order the forward pass produces them.
    public static func sites(parallelResidual: Bool) -> [BlockHook] {
        parallelResidual ? [.residPre, .attnOut, .mlpOut, .residPost] : [.residPre, .attnOut, .residMid, .mlpOut, .residPost]
    }
}

/// One activation the forward pass can hand out, typed: `.block(3, .residPost)` is
/// TransformerLens's `blocks.3.hook_resid_post`. `name` and `init?(name:)` convert to and from
/// the string names that files, globs and Python use.
///
/// | point                 | name                         | shape        |
/// |-----------------------|------------------------------|--------------|
/// | `.block(L, site)`     | `blocks.L.<site>`            | `[B, T, d]`  |
/// | `.lnFinalNormalized`  | `ln_final.hook_normalized`   | `[B, T, d]` (final LayerNorm output, affine included: what the unembedding sees) |
/// | `.logits`             | `logits`                     | `[B, T, V]`  |
public enum HookPoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    case block(Int, BlockHook)
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
        case .block(let layer, let site): return "blocks.\(layer).\(site.rawValue)"
        case .lnFinalNormalized: return "ln_final.hook_normalized"
        case .logits: return "logits"
        }
    }

    public var description: String { name }

    /// Parses a TransformerLens name; nil for anything the engine does not emit.
    public init?(name: String) {
        switch name {
        case "ln_final.hook_normalized": self = .lnFinalNormalized
        case "logits": self = .logits
        default:
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "blocks", let layer = Int(parts[1]), layer >= 0,
                  String(layer) == parts[1], let site = BlockHook(rawValue: String(parts[2])) else { return nil }
            self = .block(layer, site)
        }
    }

    /// The block index, nil for `ln_final…` and `logits`.
    public var layer: Int? {
        if case .block(let layer, _) = self { return layer }
        return nil
    }

    /// Production order: block by block (sites in forward order), then the final LayerNorm, then logits.
    public static func < (a: HookPoint, b: HookPoint) -> Bool { a.order < b.order }

    private var order: (Int, Int) {
        switch self {
        case .block(let layer, let site): return (layer, BlockHook.allCases.firstIndex(of: site)!)
        case .lnFinalNormalized: return (Int.max, 0)
        case .logits: return (Int.max, 1)
        }
    }

    /// Every hook a model with this config emits (for its first `layers` blocks), in production order.
    public static func all(for config: NeoXConfig, layers: Int? = nil) -> [HookPoint] {
        let sites = BlockHook.sites(parallelResidual: config.parallelResidual)
        var points: [HookPoint] = []
        for layer in 0..<(layers ?? config.numLayers) { points += sites.map { .block(layer, $0) } }
        return points + [.lnFinalNormalized, .logits]
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
