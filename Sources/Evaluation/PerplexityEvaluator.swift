import Corpus
import Foundation
import NeoX
import Tokenizers

/// What `PerplexityEvaluator` scores, and under which convention.
///
/// The two cases are the two conventions that exist for these models, kept apart so a setting
/// that only means something for one of them (a window, a stride) cannot be given to the other.
public enum PerplexityCorpus: Sendable, Equatable {
    /// Documents of a `.jsonl`, `.jsonl.zst` or `.txt` corpus, tokenized and scored with
    /// Hugging Face's strided windows (`StridedWindows`).
    case text(path: String, windowing: Windowing, selection: Selection)
    /// Rows of a Megatron dataset (`prefix.bin` + `prefix.idx`), each scored with Pythia's
    /// training convention (`ShiftedRow`).
    case rows(prefix: String, selection: Selection)

    /// How a text corpus becomes scored windows.
    public struct Windowing: Sendable, Equatable {
        /// Tokens per window; nil: the model's context (`max_position_embeddings`).
        public var window: Int?
        /// Tokens between window starts; nil: half the window (at least 1).
        public var stride: Int?
        /// Score each document as a stream of its own (no EOD) and report each, instead of
        /// packing all documents into one stream as Pythia's training data was.
        public var perDocument: Bool
        /// The token appended after each packed document (EOD, id 0 for the GPT-NeoX tokenizer).
        public var endOfDocument: Int32

        public init(window: Int? = nil, stride: Int? = nil, perDocument: Bool = false, endOfDocument: Int32 = 0) {
            self.window = window
            self.stride = stride
            self.perDocument = perDocument
            self.endOfDocument = endOfDocument
        }
    }

    /// Which documents (text) or rows (Megatron) to use, and how much work to do at most.
    public struct Selection: Sendable, Equatable {
        /// The first document or row, 0-based.
        public var start: Int
        /// One past the last document or row; nil: to the end of the corpus.
        public var end: Int?
        /// Use at most this many documents or rows (counted from `start`).
        public var limit: Int?
        /// Score at most this many tokens: streams are cut once the budget is spent, so a large
        /// corpus can be sampled without reading all of it.
        public var maxTokens: Int?

        public init(start: Int = 0, end: Int? = nil, limit: Int? = nil, maxTokens: Int? = nil) {
            self.start = start
            self.end = end
            self.limit = limit
            self.maxTokens = maxTokens
        }
    }
}

/// What a perplexity evaluation found, with the convention it followed stated, since the same
/// model and corpus give different numbers under different windowing.
public struct PerplexityResult: Sendable {
    public enum Mode: String, Sendable, Equatable {
        /// Text documents packed into one stream, each followed by EOD.
        case packed
        /// Each text document a stream of its own.
        case perDocument = "per-document"
        /// Megatron rows, each on its own.
        case rows
    }

    /// One document's or row's share of the total.
    public struct Unit: Sendable, Equatable {
        /// The document's or row's 0-based index in the corpus.
        public var index: Int
        public var total: NLLTotal
    }

    public var mode: Mode
    /// The scoring convention, in words, for printing beside the numbers.
    public var convention: String
    /// The windows used for a text corpus; nil for rows.
    public var windows: StridedWindows?
    /// Documents or rows used.
    public var unitCount: Int
    public var total: NLLTotal
    /// Per document (per-document mode) or per row, ascending; empty for a packed stream, whose
    /// windows cross document boundaries.
    public var units: [Unit]
}

/// Token-level NLL and perplexity of a model over a corpus.
///
/// Memory stays bounded whatever the corpus size: logits are never held for a whole batch
/// (`BatchScorer`), and a packed text corpus is read, tokenized and scored one window at a time
/// (`StridedWindowStream`); documents are tokenized in small groups, in parallel, and reading
/// stops as soon as the selection or the token budget is used up.
public struct PerplexityEvaluator: Sendable {
    public let model: NeoXModel
    /// Needed for text corpora only.
    public let tokenizer: (any TextTokenizer)?
    public var scorer: BatchScorer
    /// Documents read and tokenized together (in parallel) before they are scored.
    public var documentGroupSize = 64

    public init(model: NeoXModel, tokenizer: (any TextTokenizer)?) {
        self.model = model
        self.tokenizer = tokenizer
        self.scorer = BatchScorer(model: model)
    }

    /// Scores `corpus`.
    /// - Throws: `EvalError` for settings out of range (its `setting` says which), a selection
    ///   with nothing in it, or inputs longer than the model's context; corpus, tokenizer and
    ///   engine errors propagate.
    public func evaluate(_ corpus: PerplexityCorpus) throws -> PerplexityResult {
        switch corpus {
        case let .text(path, windowing, selection):
            try Self.check(selection)
            return try evaluateText(path: path, windowing: windowing, selection: selection)
        case let .rows(prefix, selection):
            try Self.check(selection)
            return try evaluateRows(prefix: prefix, selection: selection)
        }
    }

    static let rowsConvention = "Pythia training convention: input = row[:-1], targets = row[1:] "
        + "(each row scored on its own, every token after the row's first)"

    private static func check(_ selection: PerplexityCorpus.Selection) throws {
        guard selection.start >= 0 else {
            throw EvalError(.invalidSetting, setting: .selection, "the first document or row must be 0 or more, got \(selection.start)")
        }
        if let end = selection.end, end <= selection.start {
            throw EvalError(.invalidSetting, setting: .selection, "the selection \(selection.start)..<\(end) is empty")
        }
        if let limit = selection.limit, limit < 1 {
            throw EvalError(.invalidSetting, setting: .limit, "the document or row limit must be at least 1, got \(limit)")
        }
        if let maxTokens = selection.maxTokens, maxTokens < 1 {
            throw EvalError(.invalidSetting, setting: .maxTokens, "the token budget must be at least 1, got \(maxTokens)")
        }
    }

    private func evaluateRows(prefix: String, selection: PerplexityCorpus.Selection) throws -> PerplexityResult {
        let maxPositions = model.config.maxPositionEmbeddings
        let dataset = try IndexedDataset(prefix: prefix)
        let upper = selection.end ?? dataset.count
        guard selection.start < upper, upper <= dataset.count else {
            throw EvalError(.invalidSetting, setting: .selection,
                            "\(dataset.dataPath) has \(dataset.count) rows: rows \(selection.start)..<\(upper) are not a non-empty range within 0..<\(dataset.count)")
        }
        var accumulator = PerplexityAccumulator(scorer: scorer)
        var budget = selection.maxTokens ?? Int.max
        var units = 0
        for r in (selection.start..<upper).prefix(selection.limit ?? Int.max) where budget > 0 {
            var row = try dataset.row(r)
            if row.count - 1 > maxPositions {
                throw EvalError(.invalidInput, "\(dataset.dataPath) row \(r) has \(row.count) tokens: its input of \(row.count - 1) exceeds the model's context (max_position_embeddings = \(maxPositions))")
            }
            if row.count - 1 > budget { row = Array(row.prefix(budget + 1)) }
            let job = ShiftedRow.job(for: row)
            budget -= job.targets.count
            try accumulator.add(job, owner: r)
            units += 1
        }
        let (total, perOwner) = try accumulator.finish()
        guard total.tokens > 0 else {
            throw EvalError(.invalidInput, "\(dataset.dataPath): nothing to score (every selected row is shorter than 2 tokens)")
        }
        return PerplexityResult(mode: .rows, convention: Self.rowsConvention, windows: nil, unitCount: units,
                                total: total, units: perOwner.map { .init(index: $0.owner, total: $0.total) })
    }

    private func evaluateText(path: String, windowing: PerplexityCorpus.Windowing,
                              selection: PerplexityCorpus.Selection) throws -> PerplexityResult {
        let maxPositions = model.config.maxPositionEmbeddings
        let window = windowing.window ?? maxPositions
        guard window <= maxPositions else {
            throw EvalError(.invalidSetting, setting: .window,
                            "the window of \(window) tokens exceeds the model's context (max_position_embeddings = \(maxPositions))")
        }
        let windows = try StridedWindows(window: window, stride: windowing.stride ?? max(1, window / 2))
        let perDocument = windowing.perDocument
        let eod = windowing.endOfDocument
        if !perDocument {
            let vocabulary = model.config.vocabSize
            guard eod >= 0, Int(eod) < vocabulary else {
                throw EvalError(.invalidSetting, setting: .endOfDocument,
                                "the end-of-document token \(eod) is outside the vocabulary (0..<\(vocabulary))")
            }
        }
        guard let tokenizer else { throw EvalError(.invalidInput, "\(path): a text corpus needs a tokenizer") }
        let convention = (perDocument ? "each document is its own stream (no EOD); "
                                      : "documents packed into one stream, each followed by EOD (id \(eod)); ")
            + windows.description

        let range = selection.start..<(selection.end ?? Int.max)
        var accumulator = PerplexityAccumulator(scorer: scorer)
        var budget = selection.maxTokens ?? Int.max
        var units = 0
        var stream = try PileReader(path: path).makeStream()
        var packed = StridedWindowStream(windows)   // holds one window's tokens, not the corpus
        var index = -1
        var finished = false
        while !finished {
            var group: [(index: Int, text: String)] = []
            while group.count < documentGroupSize, let document = try stream.next() {
                index += 1
                if index < range.lowerBound { continue }
                if index >= range.upperBound || (selection.limit.map { units + group.count >= $0 } ?? false) {
                    finished = true
                    break
                }
                group.append((index, document.text))
            }
            if group.isEmpty { break }
            let encoded = try EvalConcurrency.map(group.map(\.text)) { try tokenizer.encode($0) }
            for (k, ids) in encoded.enumerated() {
                guard budget > 0 else { finished = true; break }
                units += 1
                if perDocument {
                    let kept = ids.count - 1 > budget ? Array(ids.prefix(budget + 1)) : ids
                    let jobs = windows.jobs(for: kept)
                    budget -= jobs.reduce(0) { $0 + $1.targets.count }
                    for job in jobs { try accumulator.add(job, owner: group[k].index) }
                    // A document too short to score is still reported, with no tokens.
                    if jobs.isEmpty { try accumulator.add(ScoringJob(tokens: [], targets: []), owner: group[k].index) }
                } else if !ids.isEmpty {
                    // The stream holds at most budget + 1 tokens: its first is never scored.
                    let capacity = budget == Int.max ? Int.max : budget + 1
                    let document = Array((ids + [eod]).prefix(capacity - packed.count))
                    for job in packed.append(document) { try accumulator.add(job, owner: 0) }
                    if packed.count >= capacity { finished = true; break }
                }
            }
        }
        if !perDocument {
            for job in packed.finish() { try accumulator.add(job, owner: 0) }
        }
        guard units > 0 else { throw EvalError(.invalidInput, setting: .selection, "\(path): no documents selected") }

        let (total, perOwner) = try accumulator.finish()
        guard total.tokens > 0 else {
            throw EvalError(.invalidInput, "\(path): nothing to score (every selected stream is shorter than 2 tokens)")
        }
        return PerplexityResult(mode: perDocument ? .perDocument : .packed, convention: convention, windows: windows,
                                unitCount: units, total: total,
                                units: perDocument ? perOwner.map { .init(index: $0.owner, total: $0.total) } : [])
    }
}
