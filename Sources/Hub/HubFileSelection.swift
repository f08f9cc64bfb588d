import Foundation

/// Which files of a revision the engine needs, so a fetch downloads one copy of the weights and
/// nothing else: `config.json`, the weights in the best layout present (the order
/// `Formats.Checkpoint` reads them in: sharded safetensors with their index, `model.safetensors`,
/// sharded `pytorch_model.bin` with its index, `pytorch_model.bin`) and the tokenizer and
/// generation files when the revision has them. A revision carrying both safetensors and `.bin`
/// files gets the safetensors only.
public enum HubFileSelection {
    /// Small files taken when present.
    public static let companions = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                    "special_tokens_map.json", "tokenizer.model"]

    public enum WeightLayout: String, Sendable {
        case shardedSafetensors = "sharded safetensors"
        case safetensors = "model.safetensors"
        case shardedPytorchBin = "sharded pytorch_model.bin"
        case pytorchBin = "pytorch_model.bin"
    }

    /// The weight files of the best layout present, and which layout that is (nil: no weights).
    public static func weights(_ files: [HubFile]) -> (layout: WeightLayout, files: [HubFile])? {
        let byPath = Dictionary(files.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        func shards(_ prefix: String, _ suffix: String) -> [HubFile] {
            files.filter { isShard($0.path, prefix: prefix, suffix: suffix) }.sorted { $0.path < $1.path }
        }
        if let index = byPath["model.safetensors.index.json"], case let parts = shards("model-", ".safetensors"), !parts.isEmpty {
            return (.shardedSafetensors, [index] + parts)
        }
        if let single = byPath["model.safetensors"] { return (.safetensors, [single]) }
        if let index = byPath["pytorch_model.bin.index.json"], case let parts = shards("pytorch_model-", ".bin"), !parts.isEmpty {
            return (.shardedPytorchBin, [index] + parts)
        }
        if let single = byPath["pytorch_model.bin"] { return (.pytorchBin, [single]) }
        return nil
    }

    /// The default selection, in a stable order (config first).
    public static func defaultFiles(_ files: [HubFile]) -> [HubFile] {
        let byPath = Dictionary(files.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        var chosen = companions.compactMap { byPath[$0] }
        chosen += weights(files)?.files ?? []
        return chosen
    }

    /// `--files`: each pattern (a path, or a glob with `*` and `?`) must match at least one file.
    public static func matching(_ patterns: [String], in files: [HubFile], revision: String) throws -> [HubFile] {
        var chosen: [HubFile] = []
        for pattern in patterns {
            let hits = files.filter { glob(pattern, $0.path) }
            guard !hits.isEmpty else {
                throw HubError(.fileNotFound, "revision '\(revision)' has no file matching '\(pattern)' (it has: \(files.map(\.path).sorted().joined(separator: ", ")))")
            }
            for hit in hits where !chosen.contains(hit) { chosen.append(hit) }
        }
        return chosen
    }

    /// `model-00001-of-00002.safetensors`: PREFIX digits `-of-` digits SUFFIX.
    static func isShard(_ path: String, prefix: String, suffix: String) -> Bool {
        guard path.hasPrefix(prefix), path.hasSuffix(suffix), path.count > prefix.count + suffix.count else { return false }
        let middle = path.dropFirst(prefix.count).dropLast(suffix.count)
        let parts = middle.components(separatedBy: "-of-")
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    /// fnmatch-style `*` (any run, `/` included, as `allow_patterns` matches) and `?`.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                pi += 1
                ti += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
