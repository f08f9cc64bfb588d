import Foundation

/// A model directory in any layout Pythia revisions come in, seen as one set of named tensors.
/// Files are memory-mapped; a tensor is widened to fp32 only when it is asked for.
public final class Checkpoint: Sendable {
    /// Which files hold the weights.
    public enum Layout: Sendable, Equatable, CustomStringConvertible {
        case safetensors
        case shardedSafetensors(shards: Int)
        case pytorchBin
        case shardedPytorchBin(shards: Int)

        public var description: String {
            switch self {
            case .safetensors: return "model.safetensors"
            case .shardedSafetensors(let n): return "sharded safetensors (\(n) files)"
            case .pytorchBin: return "pytorch_model.bin"
            case .shardedPytorchBin(let n): return "sharded pytorch_model.bin (\(n) files)"
            }
        }
    }

    public let directory: URL
    public let config: NeoXConfig
    public let layout: Layout
    /// Model tensors by HF name; the buffers old files carry are already dropped.
    public let entries: [String: TensorEntry]

    public init(directory: URL) throws {
        self.directory = directory
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw FormatError(.notFound, "model directory does not exist", file: directory)
        }
        let configURL = directory.appendingPathComponent("config.json")
        guard fileManager.fileExists(atPath: configURL.path) else {
            throw FormatError(.notFound, "no config.json in model directory", file: directory)
        }
        config = try NeoXConfig.load(contentsOf: configURL)

        func exists(_ name: String) -> Bool { fileManager.fileExists(atPath: directory.appendingPathComponent(name).path) }
        var raw: [String: TensorEntry]
        if exists("model.safetensors.index.json") {
            let shards = try Self.readShardIndex(directory.appendingPathComponent("model.safetensors.index.json"))
            raw = try Self.merge(shards: shards, in: directory, reader: SafeTensors.read)
            layout = .shardedSafetensors(shards: shards.count)
        } else if exists("model.safetensors") {
            raw = try SafeTensors.read(directory.appendingPathComponent("model.safetensors"))
            layout = .safetensors
        } else if exists("pytorch_model.bin.index.json") {
            let shards = try Self.readShardIndex(directory.appendingPathComponent("pytorch_model.bin.index.json"))
            raw = try Self.merge(shards: shards, in: directory, reader: TorchCheckpoint.read)
            layout = .shardedPytorchBin(shards: shards.count)
        } else if exists("pytorch_model.bin") {
            raw = try TorchCheckpoint.read(directory.appendingPathComponent("pytorch_model.bin"))
            layout = .pytorchBin
        } else {
            let present = (try? fileManager.contentsOfDirectory(atPath: directory.path).sorted().joined(separator: ", ")) ?? ""
            throw FormatError(.notFound, "no weights found (looked for model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json; found: \(present))", file: directory)
        }
        raw = raw.filter { !Self.isBuffer($0.key) }
        entries = raw
        try Self.checkLayerCount(config: config, names: raw.keys, directory: directory)
    }

    /// config.json's `num_hidden_layers` must be the number of blocks the weights hold: checked
    /// from the names alone, before anything sizes itself by the config (a config claiming 10⁹
    /// layers is refused here, not after enumerating them).
    static func checkLayerCount(config: NeoXConfig, names: Dictionary<String, TensorEntry>.Keys, directory: URL) throws {
        var blocks = Set<Int>()
        for name in names where name.hasPrefix("gpt_neox.layers.") {
            let rest = name.dropFirst("gpt_neox.layers.".count)
            if let dot = rest.firstIndex(of: "."), let index = Int(rest[..<dot]) { blocks.insert(index) }
        }
        let found = blocks.max().map { $0 + 1 } ?? 0
        guard found == config.numLayers, blocks.count == found else {
            let missing = found == blocks.count ? "" : " (some blocks below \(found) are missing)"
            throw FormatError(.shapeMismatch, "config.json says num_hidden_layers = \(config.numLayers), but the weights hold "
                + "\(blocks.count) blocks gpt_neox.layers.0…\(max(found - 1, 0))\(missing)", file: directory)
        }
    }

    /// Buffers that old GPT-NeoX files saved alongside the weights; they are recomputed, never loaded.
    static func isBuffer(_ name: String) -> Bool {
        name.hasSuffix(".attention.bias") || name.hasSuffix(".attention.masked_bias")
            || name.hasSuffix("rotary_emb.inv_freq")
    }

    public var tensorNames: [String] { entries.keys.sorted() }

    /// The tensor `name` in fp32, after checking it exists with exactly `shape`.
    public func tensor(_ name: String, shape: [Int]) throws -> [Float] {
        guard let entry = entries[name] else {
            throw FormatError(.missingTensor, "missing tensor '\(name)' (layout: \(layout))", file: directory)
        }
        guard entry.shape == shape else {
            throw FormatError(.shapeMismatch, "tensor '\(name)' has shape \(entry.shape), expected \(shape) from config.json", file: entry.file.url)
        }
        defer { entry.releasePages() }
        return try entry.float32()
    }

    /// The entry `name` after checking it exists, has exactly `shape` and a floating-point dtype
    /// (for weights read later, block by block, instead of now).
    public func entry(_ name: String, shape: [Int]) throws -> TensorEntry {
        guard let entry = entries[name] else {
            throw FormatError(.missingTensor, "missing tensor '\(name)' (layout: \(layout))", file: directory)
        }
        guard entry.shape == shape else {
            throw FormatError(.shapeMismatch, "tensor '\(name)' has shape \(entry.shape), expected \(shape) from config.json", file: entry.file.url)
        }
        guard entry.dtype.isFloatingPoint else {
            throw FormatError(.unsupported, "tensor '\(name)' has dtype \(entry.dtype.rawValue), expected a floating-point type", file: entry.file.url)
        }
        return entry
    }

    /// `weight_map` of a sharded checkpoint's index: shard file name → tensor names it must hold.
    static func readShardIndex(_ url: URL) throws -> [String: [String]] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FormatError(.io, "cannot read shard index: \(error.localizedDescription)", file: url)
        }
        let object = try JSONParsing.object(data, what: "shard index JSON", file: url)
        guard let json = object as? [String: Any], let weightMap = json["weight_map"] as? [String: Any] else {
            throw FormatError(.malformed, "shard index has no 'weight_map' object", file: url)
        }
        var shards: [String: [String]] = [:]
        for (tensor, file) in weightMap {
            guard let file = file as? String, !file.contains("/") else {
                throw FormatError(.malformed, "weight_map entry for '\(tensor)' is not a file name in the same directory", file: url)
            }
            // "" and "." would name the directory itself ("…/model: is a directory" much later).
            guard !file.isEmpty, file != ".", file != "..", !file.contains("\0") else {
                throw FormatError(.malformed, "weight_map entry for '\(tensor)' names the shard file '\(file)', which is not a file name", file: url)
            }
            shards[file, default: []].append(tensor)
        }
        guard !shards.isEmpty else { throw FormatError(.malformed, "shard index lists no tensors", file: url) }
        return shards
    }

    static func merge(shards: [String: [String]], in directory: URL,
                      reader: (URL) throws -> [String: TensorEntry]) throws -> [String: TensorEntry] {
        var merged: [String: TensorEntry] = [:]
        for (file, names) in shards.sorted(by: { $0.key < $1.key }) {
            let url = directory.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw FormatError(.notFound, "shard listed in the index is missing", file: url)
            }
            let entries = try reader(url)
            for name in names where entries[name] == nil {
                throw FormatError(.missingTensor, "index says tensor '\(name)' is in this shard, but it is not", file: url)
            }
            for (name, entry) in entries {
                if merged[name] != nil { throw FormatError(.malformed, "tensor '\(name)' appears in more than one shard", file: url) }
                merged[name] = entry
            }
        }
        return merged
    }
}
