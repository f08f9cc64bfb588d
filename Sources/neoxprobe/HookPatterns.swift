import ArgumentParser
import NeoX

/// `--hooks 'blocks.*.hook_resid_post,logits'`: comma-separated glob patterns over hook names.
///
/// Which names exist depends on the model (its depth, parallel or sequential residual), so a
/// pattern matching nothing is found only once the config is read, by `ForwardPlan`.
struct HookPatterns: ExpressibleByArgument, CustomStringConvertible, Equatable, Sendable {
    /// The patterns, whitespace trimmed, empty items dropped.
    let patterns: [String]
    /// As given, for the output file's metadata.
    let description: String

    static func parse(_ text: String) throws -> HookPatterns {
        let filter = HookFilter(text)
        guard !filter.isEmpty else { throw ValidationError("no hook patterns given (e.g. 'blocks.*.hook_resid_post,logits' or '*')") }
        return HookPatterns(patterns: filter.patterns, description: text)
    }

    init?(argument: String) {
        guard let patterns = try? Self.parse(argument) else { return nil }
        self = patterns
    }

    private init(patterns: [String], description: String) {
        self.patterns = patterns
        self.description = description
    }

    var filter: HookFilter { HookFilter(patterns: patterns) }
}
