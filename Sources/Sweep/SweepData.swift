import Corpus
import Formats
import Foundation
import NeoX
import ProbeStats
import Results
import Tokenizers

/// Which tokens every checkpoint of a sweep is measured on. One fixed set for the whole sweep,
/// so that numbers from different checkpoints are comparable and CKA can pair tokens up.
public enum SweepDataSpec: Sendable, Equatable {
    /// Rows `rows` of a Megatron `.bin`/`.idx` dataset, the first `sequenceLength` tokens of each.
    case rows(prefix: String, rows: Range<Int>, sequenceLength: Int)
    /// The rows Pythia's training step `step` consumed (batch size `batchSize`, wrapped modulo
    /// the row count), the first `sequenceLength` tokens of each.
    case batchOfStep(prefix: String, step: Int, batchSize: Int, sequenceLength: Int)
    /// Documents of a `.jsonl`/`.jsonl.zst`/`.txt` corpus, tokenized, each followed by EOD and
    /// packed into `maxSequences` windows of `sequenceLength` tokens (fewer if the corpus ends).
    case text(path: String, sequenceLength: Int, maxSequences: Int, endOfDocument: Int32)

    public var sequenceLength: Int {
        switch self {
        case .rows(_, _, let t), .batchOfStep(_, _, _, let t), .text(_, let t, _, _): return t
        }
    }

    public var needsTokenizer: Bool { if case .text = self { return true } else { return false } }

    /// Builds a spec from the command-line pieces, rejecting combinations that do not apply.
    public static func parse(data: String, rows: String?, batchOfStep: Int?, batchSize: Int, sequenceLength: Int?,
                             maxSequences: Int?, endOfDocument: Int32 = 0) throws -> SweepDataSpec {
        let length = sequenceLength ?? 2048
        guard length >= 2 else { throw SweepError(.invalidOption, "--seq-len must be at least 2, got \(length)") }
        if let prefix = IndexedDataset.prefix(forPath: data) {
            let absolute = URL(fileURLWithPath: prefix).standardizedFileURL.path
            guard FileManager.default.fileExists(atPath: absolute + ".idx"), FileManager.default.fileExists(atPath: absolute + ".bin") else {
                throw SweepError(.notFound, "--data \(data): missing \(absolute).bin or \(absolute).idx")
            }
            if maxSequences != nil { throw SweepError(.invalidOption, "--max-sequences applies to text corpora; for .bin/.idx data select rows with --rows a:b") }
            if let step = batchOfStep {
                if rows != nil { throw SweepError(.invalidOption, "give either --rows or --batch-of-step, not both") }
                guard step >= 0, batchSize > 0 else { throw SweepError(.invalidOption, "--batch-of-step and --batch-size must be non-negative / positive") }
                return .batchOfStep(prefix: absolute, step: step, batchSize: batchSize, sequenceLength: length)
            }
            guard let rows else { throw SweepError(.invalidOption, "--data \(data) is a .bin/.idx dataset: choose rows with --rows a:b (or --batch-of-step N)") }
            let dataset = try IndexedDataset(prefix: absolute)
            let range = try RowSelection.parseRange(rows, upperLimit: dataset.count)
            return .rows(prefix: absolute, rows: range, sequenceLength: length)
        }
        guard PileReader.Format.infer(fromPath: data) != nil else {
            throw SweepError(.invalidOption, "--data \(data): expected a Megatron dataset (PREFIX with PREFIX.bin/.idx) or a .jsonl, .jsonl.zst or .txt corpus")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw SweepError(.notFound, "--data \(data): no such file")
        }
        if rows != nil || batchOfStep != nil { throw SweepError(.invalidOption, "--rows and --batch-of-step apply to .bin/.idx datasets; for text use --max-sequences N") }
        guard let maxSequences, maxSequences > 0 else { throw SweepError(.invalidOption, "--data \(data) is a text corpus: give --max-sequences N (windows of --seq-len tokens)") }
        return .text(path: URL(fileURLWithPath: data).standardizedFileURL.path, sequenceLength: length,
                     maxSequences: maxSequences, endOfDocument: endOfDocument)
    }

    /// Canonical key/value description, part of the options fingerprint.
    public var canonical: [String: String] {
        switch self {
        case let .rows(prefix, rows, t):
            return ["data.kind": "rows", "data.path": prefix, "data.rows": "\(rows.lowerBound):\(rows.upperBound)", "data.seq_len": "\(t)"]
        case let .batchOfStep(prefix, step, batch, t):
            return ["data.kind": "batch_of_step", "data.path": prefix, "data.step": "\(step)", "data.batch_size": "\(batch)", "data.seq_len": "\(t)"]
        case let .text(path, t, n, eod):
            return ["data.kind": "packed_text", "data.path": path, "data.seq_len": "\(t)", "data.max_sequences": "\(n)", "data.eod": "\(eod)"]
        }
    }

    /// One line for logs and run.json.
    public var summary: String {
        switch self {
        case let .rows(prefix, rows, t):
            return "\(prefix).bin rows \(rows.lowerBound)..<\(rows.upperBound), first \(t) tokens of each"
        case let .batchOfStep(prefix, step, batch, t):
            return "\(prefix).bin rows of training step \(step) (batch size \(batch)), first \(t) tokens of each"
        case let .text(path, t, n, eod):
            return "\(path): documents tokenized, each followed by EOD \(eod), packed into up to \(n) windows of \(t) tokens"
        }
    }

    /// Reads (and, for text, tokenizes) the evaluation tokens: equal-length sequences.
    /// - Throws: `SweepError` when the data cannot supply a single full sequence, a row is shorter
    ///   than the sequence length, or the sequence length exceeds `contextLimit`.
    public func load(tokenizer: (any TextTokenizer)?, contextLimit: Int) throws -> [[Int32]] {
        let length = sequenceLength
        guard length <= contextLimit else {
            throw SweepError(.invalidData, "--seq-len \(length) exceeds the model's context (max_position_embeddings = \(contextLimit))")
        }
        switch self {
        case let .rows(prefix, rows, t):
            let dataset = try IndexedDataset(prefix: prefix)
            return try rows.map { try Self.prefixOfRow($0, dataset: dataset, length: t) }
        case let .batchOfStep(prefix, step, batch, t):
            let dataset = try IndexedDataset(prefix: prefix)
            return try dataset.rowIndices(step: step, batchSize: batch).map { try Self.prefixOfRow($0, dataset: dataset, length: t) }
        case let .text(path, t, n, eod):
            guard let tokenizer else { throw SweepError(.invalidData, "packed text data needs a tokenizer") }
            let reader = try PileReader(path: path)
            let windows = try TokenPacker.pack(reader: reader, windowLength: t, maxWindows: n, endOfDocument: eod,
                                               encode: { try tokenizer.encode($0) })
            guard !windows.isEmpty else {
                throw SweepError(.invalidData, "--data \(path): the corpus holds fewer than \(t) tokens, not enough for one sequence of --seq-len \(t)")
            }
            return windows
        }
    }

    private static func prefixOfRow(_ index: Int, dataset: IndexedDataset, length: Int) throws -> [Int32] {
        let row = try dataset.row(index)
        guard row.count >= length else {
            throw SweepError(.invalidData, "\(dataset.dataPath) row \(index) has \(row.count) tokens, fewer than --seq-len \(length)")
        }
        return Array(row.prefix(length))
    }
}
