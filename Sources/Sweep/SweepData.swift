import Corpus
import Foundation
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

    /// Builds a spec from separately given pieces (as a command line gives them), rejecting
    /// combinations that do not apply. `sequenceLength` nil means 2048, Pythia's context.
    public static func parse(data: String, rows: String?, batchOfStep: Int?, batchSize: Int, sequenceLength: Int?,
                             maxSequences: Int?, endOfDocument: Int32 = 0) throws -> SweepDataSpec {
        let length = sequenceLength ?? 2048
        guard length >= 2 else {
            throw SweepError(.invalidOption, option: .sequenceLength, "sequence length \(length) is below the minimum of 2")
        }
        if let prefix = IndexedDataset.prefix(forPath: data) {
            let absolute = URL(fileURLWithPath: prefix).standardizedFileURL.path
            guard FileManager.default.fileExists(atPath: absolute + ".idx"), FileManager.default.fileExists(atPath: absolute + ".bin") else {
                throw SweepError(.notFound, option: .data, "dataset \(data): missing \(absolute).bin or \(absolute).idx")
            }
            if maxSequences != nil {
                throw SweepError(.invalidOption, option: .maxSequences,
                                 "a window count applies to text corpora; \(data) is a Megatron dataset, whose rows are selected by range or training step")
            }
            if let step = batchOfStep {
                if rows != nil {
                    throw SweepError(.invalidOption, option: .rows, "a row range and a training step's batch are alternatives; both were given")
                }
                _ = try samples(step: step, batchSize: batchSize)
                return .batchOfStep(prefix: absolute, step: step, batchSize: batchSize, sequenceLength: length)
            }
            guard let rows else {
                throw SweepError(.invalidOption, option: .rows, "\(data) is a Megatron .bin/.idx dataset: it needs a row range a:b or a training step")
            }
            let dataset = try IndexedDataset(prefix: absolute)
            return .rows(prefix: absolute, rows: try rowRange(rows, rowCount: dataset.count), sequenceLength: length)
        }
        guard PileReader.Format.infer(fromPath: data) != nil else {
            throw SweepError(.invalidOption, option: .data,
                             "\(data): expected a Megatron dataset (PREFIX with PREFIX.bin/.idx) or a .jsonl, .jsonl.zst or .txt corpus")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw SweepError(.notFound, option: .data, "\(data): no such file")
        }
        if rows != nil || batchOfStep != nil {
            throw SweepError(.invalidOption, option: rows != nil ? .rows : .batchOfStep,
                             "row ranges and training steps apply to .bin/.idx datasets; \(data) is a text corpus, cut into a number of windows")
        }
        guard let maxSequences, maxSequences > 0 else {
            throw SweepError(.invalidOption, option: .maxSequences,
                             "\(data) is a text corpus: it needs a positive number of windows (of the sequence length) to pack")
        }
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
    ///   than the sequence length, the sequence length exceeds `contextLimit`, or the selection
    ///   leaves the dataset or would not fit in memory (checked before anything is allocated).
    public func load(tokenizer: (any TextTokenizer)?, contextLimit: Int) throws -> [[Int32]] {
        let length = sequenceLength
        guard length <= contextLimit else {
            throw SweepError(.invalidData, option: .sequenceLength,
                             "sequence length \(length) exceeds the model's context (max_position_embeddings = \(contextLimit))")
        }
        switch self {
        case let .rows(prefix, rows, t):
            let dataset = try IndexedDataset(prefix: prefix)
            guard !rows.isEmpty, rows.lowerBound >= 0, rows.upperBound <= dataset.count else {
                throw SweepError(.invalidOption, option: .rows,
                                 "rows \(rows.lowerBound)..<\(rows.upperBound) are not a non-empty range within the dataset's 0..<\(dataset.count)")
            }
            try Self.requireInMemory(sequences: rows.count, length: t, option: .rows)
            return try rows.map { try Self.prefixOfRow($0, dataset: dataset, length: t) }
        case let .batchOfStep(prefix, step, batch, t):
            _ = try Self.samples(step: step, batchSize: batch)
            try Self.requireInMemory(sequences: batch, length: t, option: .batchSize)
            let dataset = try IndexedDataset(prefix: prefix)
            return try dataset.rowIndices(step: step, batchSize: batch).map { try Self.prefixOfRow($0, dataset: dataset, length: t) }
        case let .text(path, t, n, eod):
            guard let tokenizer else { throw SweepError(.invalidData, "packed text data needs a tokenizer") }
            let reader = try PileReader(path: path)
            let windows = try TokenPacker.pack(reader: reader, windowLength: t, maxWindows: n, endOfDocument: eod,
                                               encode: { try tokenizer.encode($0) })
            guard !windows.isEmpty else {
                throw SweepError(.invalidData, option: .data,
                                 "\(path): the corpus holds fewer than \(t) tokens, not enough for one sequence of that length")
            }
            return windows
        }
    }

    /// The samples training step `step` consumed, `step·B ..< (step+1)·B`, refusing what has no
    /// such range (a negative step, a batch below 1, an end past `Int.max`) instead of trapping.
    static func samples(step: Int, batchSize: Int) throws -> Range<Int> {
        guard step >= 0 else { throw SweepError(.invalidOption, option: .batchOfStep, "training step \(step) is negative") }
        guard batchSize >= 1 else { throw SweepError(.invalidOption, option: .batchSize, "batch size \(batchSize) is below the minimum of 1") }
        let (start, startOverflow) = step.multipliedReportingOverflow(by: batchSize)
        let (end, endOverflow) = start.addingReportingOverflow(batchSize)
        guard !startOverflow, !endOverflow else {
            throw SweepError(.invalidOption, option: .batchOfStep,
                             "training step \(step) with batch size \(batchSize) reaches past sample index \(Int.max)")
        }
        return start..<end
    }

    /// A row range `a:b` inside `0..<rowCount`, as `RowSelection` reads it.
    static func rowRange(_ text: String, rowCount: Int) throws -> Range<Int> {
        do { return try RowSelection.parseRange(text, upperLimit: rowCount) } catch let error as CorpusError where error.kind == .outOfRange {
            throw SweepError(.invalidOption, option: .rows, "row range '\(text)': \(error.message)")
        }
    }

    /// Refuses a selection whose token ids alone would not fit in this machine's memory.
    private static func requireInMemory(sequences: Int, length: Int, option: SweepOptions.Field) throws {
        let bytes = SweepMemory.product([sequences, length, MemoryLayout<Int32>.size])
        try SweepMemory.require(bytes, for: "\(sequences) sequences of \(length) tokens", option: option)
    }

    private static func prefixOfRow(_ index: Int, dataset: IndexedDataset, length: Int) throws -> [Int32] {
        let row = try dataset.row(index)
        guard row.count >= length else {
            throw SweepError(.invalidData, option: .sequenceLength,
                             "\(dataset.dataPath) row \(index) has \(row.count) tokens, fewer than the sequence length \(length)")
        }
        return Array(row.prefix(length))
    }
}
