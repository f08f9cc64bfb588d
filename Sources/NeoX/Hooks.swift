import Formats
/// Activation hook points, named and defined as TransformerLens names them:
///
/// | name                          | value (shape `[B, T, d]` unless noted)                          |
/// |-------------------------------|------------------------------------------------------------------|
/// | `blocks.L.hook_resid_pre`     | residual stream entering block L (embeddings for L = 0)          |
/// | `blocks.L.hook_attn_out`      | attention output after `dense`, bias included                    |
/// | `blocks.L.hook_mlp_out`       | MLP output after `dense_4h_to_h`, bias included                  |
/// | `blocks.L.hook_resid_mid`     | `resid_pre + attn_out` — **sequential-residual models only**     |
/// | `blocks.L.hook_resid_post`    | residual stream leaving block L (raw, before any final LayerNorm)|
/// | `ln_final.hook_normalized`    | final LayerNorm output (affine included), what the unembedding sees |
/// | `logits`                      | `[B, T, V]`                                                      |
///
/// Parallel-residual models (all Pythia) have no `hook_resid_mid`: the MLP reads `resid_pre`,
/// not `resid_pre + attn_out`, so there is no intermediate residual to report; TransformerLens
/// also omits it for `parallel_attn_mlp` models. The engine neither lists nor emits it there.
public enum HookName {
    public static func residPre(_ layer: Int) -> String { "blocks.\(layer).hook_resid_pre" }
    public static func attnOut(_ layer: Int) -> String { "blocks.\(layer).hook_attn_out" }
    public static func mlpOut(_ layer: Int) -> String { "blocks.\(layer).hook_mlp_out" }
    public static func residMid(_ layer: Int) -> String { "blocks.\(layer).hook_resid_mid" }
    public static func residPost(_ layer: Int) -> String { "blocks.\(layer).hook_resid_post" }
    public static let lnFinal = "ln_final.hook_normalized"
    public static let logits = "logits"

    /// Every hook a model with this config emits, in the order a forward pass produces them.
    public static func all(for config: NeoXConfig, layers: Int? = nil) -> [String] {
        var names: [String] = []
        for L in 0..<(layers ?? config.numLayers) {
            names.append(residPre(L))
            names.append(attnOut(L))
            if !config.parallelResidual { names.append(residMid(L)) }
            names.append(mlpOut(L))
            names.append(residPost(L))
        }
        names.append(lnFinal)
        names.append(logits)
        return names
    }

    /// The block index of a `blocks.L.…` name, nil for `ln_final…`/`logits`.
    public static func layer(of name: String) -> Int? {
        guard name.hasPrefix("blocks.") else { return nil }
        let rest = name.dropFirst("blocks.".count)
        guard let dot = rest.firstIndex(of: ".") else { return nil }
        return Int(rest[rest.startIndex..<dot])
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

    public var isEmpty: Bool { patterns.isEmpty }
    public var description: String { patterns.joined(separator: ",") }

    public func matches(_ name: String) -> Bool {
        let text = Array(name.utf8)
        return patterns.contains { Self.glob(Array($0.utf8), text) }
    }

    /// The names among `names` this filter selects, in their original order.
    public func select(_ names: [String]) -> [String] { names.filter(matches) }

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

fileprivate extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
