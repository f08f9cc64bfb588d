import Foundation
import Report
import Results

@testable import Corpus
@testable import Formats
@testable import Tokenizers

/// One fuzz target: bytes in, the parser run on them. A thrown error is a clean refusal (the
/// parsers' whole job on bad input); a trap, a sanitizer report, a hang past libFuzzer's
/// `-timeout` or memory past `-rss_limit_mb` is a finding.
struct FuzzTarget {
    let name: String
    /// What the bytes are, for Fuzz/README.md and `--list`.
    let summary: String
    let run: (Data, Scratch) throws -> Void
}

/// A per-process directory the targets write their input into, so every parser is driven
/// through the same file-reading path the command line uses (memory maps included).
struct Scratch {
    let directory: URL

    static func make() -> Scratch {
        let base = ProcessInfo.processInfo.environment["NEOXPROBE_FUZZ_SCRATCH"] ?? NSTemporaryDirectory()
        let directory = URL(fileURLWithPath: base).appendingPathComponent("neoxprobe-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return Scratch(directory: directory)
    }

    /// Writes `data` to `name` inside the scratch directory (replacing what was there).
    func file(_ name: String, _ data: Data) -> URL {
        let url = directory.appendingPathComponent(name)
        try? data.write(to: url)
        return url
    }

    func remove(_ name: String) {
        try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
    }
}

/// Splits an input into two files: a little-endian UInt32 length of the first part, the first
/// part, the rest. Short inputs give an empty first part.
func split(_ data: Data) -> (Data, Data) {
    let bytes = [UInt8](data)
    guard bytes.count >= 4 else { return (Data(), Data(bytes)) }
    let length = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
    let first = min(length, bytes.count - 4)
    return (Data(bytes[4..<(4 + first)]), Data(bytes[(4 + first)...]))
}

/// Reads every tensor a parser accepted (bounded), so an entry pointing outside its file is a
/// crash here rather than a silent acceptance.
func touch(_ entries: [String: TensorEntry]) throws {
    var budget = 1 << 22
    for entry in entries.values.sorted(by: { $0.name < $1.name }) {
        guard entry.byteCount <= budget else { return }
        budget -= entry.byteCount
        _ = entry.nonFiniteCount()
        if entry.dtype.isFloatingPoint { _ = try entry.float32() }
    }
}

/// Accepts any pickle global, so the fuzzer reaches every opcode; calls build nothing.
struct PermissiveResolver: PickleResolver {
    func allows(_ global: PickleGlobal) -> Bool { true }
    func call(_ global: PickleGlobal, arguments: [PickleValue]) throws -> PickleValue { .none }
    func persistentLoad(_ id: PickleValue) throws -> PickleValue { .none }
    func build(_ object: PickleValue, state: PickleValue) throws -> PickleValue { object }
}

let fuzzTargets: [FuzzTarget] = [
    FuzzTarget(name: "safetensors", summary: "a model.safetensors file (header length, JSON header, data)") { data, scratch in
        try touch(SafeTensors.read(scratch.file("model.safetensors", data)))
    },
    FuzzTarget(name: "index", summary: "model.safetensors.index.json (the weight_map of a sharded checkpoint)") { data, scratch in
        let index = scratch.file("model.safetensors.index.json", data)
        let shards = try Checkpoint.readShardIndex(index)
        // Shard names are resolved in the directory: none exist, so each must be refused by name.
        _ = try Checkpoint.merge(shards: shards, in: scratch.directory.appendingPathComponent("shards"), reader: SafeTensors.read)
    },
    FuzzTarget(name: "zip", summary: "pytorch_model.bin (the zip directory, CRC-32s, data.pkl, storages)") { data, scratch in
        try touch(TorchCheckpoint.read(scratch.file("pytorch_model.bin", data)))
    },
    FuzzTarget(name: "pickle", summary: "a pickle stream (data.pkl), every global allowed") { data, _ in
        _ = try Unpickler.load([UInt8](data), resolver: PermissiveResolver())
    },
    FuzzTarget(name: "config", summary: "config.json") { data, scratch in
        _ = try NeoXConfig.load(contentsOf: scratch.file("config.json", data))
    },
    FuzzTarget(name: "tokenizer", summary: "tokenizer.json (byte-level BPE), then encode and decode a text") { data, scratch in
        let tokenizer = try BPETokenizer(contentsOf: scratch.file("tokenizer.json", data))
        let ids = try tokenizer.encode("Hello, world! <|endoftext|> 12 345\n\tÆ 日本")
        _ = try tokenizer.decode(ids)
    },
    FuzzTarget(name: "idx", summary: "UInt32 LE length, document.idx, then document.bin; every row read") { data, scratch in
        let (index, bin) = split(data)
        _ = scratch.file("document.idx", index)
        _ = scratch.file("document.bin", bin)
        let dataset = try IndexedDataset(prefix: scratch.directory.appendingPathComponent("document").path)
        for row in 0..<min(dataset.count, 64) { _ = try dataset.row(row) }
        for document in 0..<min(dataset.documentIndexCount, 64) { _ = try dataset.documentBoundary(document) }
    },
    FuzzTarget(name: "jsonl", summary: "a Pile .jsonl, or .jsonl.zst when it starts with the zstd magic; also read as LAMBADA") { data, scratch in
        let compressed = data.starts(with: [0x28, 0xB5, 0x2F, 0xFD])
        let path = scratch.file(compressed ? "pile.jsonl.zst" : "pile.jsonl", data).path
        // A 61-byte chunk (not the 128 KiB default) puts line and zstd-frame ends across chunk edges.
        _ = try? PileReader(path: path, setNames: nil, format: nil, chunkSize: 61).documents(limit: 256)
        if !compressed { _ = try LambadaDataset.load(path: path, chunkSize: 61) }
    },
    FuzzTarget(name: "tokens", summary: "a --tokens file (ids per line)") { data, _ in
        let file = try TokenFile(argument: String(decoding: data, as: UTF8.self))
        _ = try? file.batch()
    },
    FuzzTarget(name: "metrics", summary: "UInt32 LE length, run.json, then metrics.csv; the report rendered") { data, scratch in
        let (runJSON, csv) = split(data)
        let results = scratch.directory.appendingPathComponent("results")
        try? FileManager.default.createDirectory(at: results, withIntermediateDirectories: true)
        try? csv.write(to: results.appendingPathComponent("metrics.csv"))
        let run = results.appendingPathComponent("run.json")
        if runJSON.isEmpty { try? FileManager.default.removeItem(at: run) } else { try? runJSON.write(to: run) }
        let rows = try MetricsCSV.read(contentsOf: results.appendingPathComponent("metrics.csv"))
        guard rows.count <= 20_000 else { return }  // rendering is linear; keep an execution short
        try HTMLReport.generate(results: results, output: results.appendingPathComponent("report.html"))
    },
]
