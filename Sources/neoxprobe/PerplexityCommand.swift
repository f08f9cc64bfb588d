import ArgumentParser
import Corpus
import Evaluation
import Formats
import Foundation
import NeoX
import Report
import Results
import Sweep

/// `neoxprobe perplexity`: token-level mean NLL and perplexity of a model over a corpus.
///
/// Logits are never held for a whole batch: `ln_final` output is unembedded a chunk of scored rows
/// at a time and reduced to log-sum-exp − target logit, summed in Float64 (see `BatchScorer`, `LogSoftmax`).
struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Token-level NLL and perplexity over a corpus (.jsonl, .jsonl.zst, .txt, or Megatron .bin/.idx rows).",
        discussion: """
        Text corpora (.jsonl, .jsonl.zst, .txt) are tokenized and scored with Hugging Face's strided convention: \
        windows of --window tokens every --stride tokens; each token is scored once, with the left context its \
        window allows; a stream's first token is not scored. By default documents are packed into one stream, \
        each followed by EOD (id 0), as Pythia's training data was; --per-document scores each document as a \
        stream of its own (no EOD) and reports each. Only the current window of the packed stream is held in \
        memory, so corpora of any size can be scored; --limit / --max-tokens bound the work. \
        Megatron .bin/.idx rows (give PREFIX, PREFIX.bin or PREFIX.idx) use Pythia's training convention: the \
        input is a row without its last token, the targets are the row shifted by one (2048 inputs for 2049-token \
        rows); every token but the row's first is scored. \
        perplexity = exp(total NLL / scored tokens).
        """)

    @OptionGroup var modelOptions: EvalModelOptions

    @Option(name: .long, help: "Corpus: .jsonl, .jsonl.zst, .txt, or a Megatron dataset (PREFIX, PREFIX.bin, PREFIX.idx).")
    var data: String

    @Option(name: .long, help: "Window length in tokens for text corpora (default: the model's context, max_position_embeddings).")
    var window: Int?

    @Option(name: .long, help: "Stride between windows for text corpora (default: window / 2).")
    var stride: Int?

    @Flag(name: .long, help: "Score each document as its own stream and report each (text corpora).")
    var perDocument = false

    @Option(name: .long, help: "Documents (text) or rows (.bin) to use: a:b, a:, :b or a (0-based, b exclusive).")
    var rows: String?

    @Option(name: .long, help: "Use at most N documents or rows (after --rows).")
    var limit: Int?

    @Option(name: .long, help: "Score at most N tokens (streams are truncated once the budget is used).")
    var maxTokens: Int?

    @Option(name: .long, help: "End-of-document token appended after each packed document.")
    var eod: Int32 = 0

    @Flag(name: .long, help: "Print one JSON object (results and provenance) instead of text.")
    var json = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1, got \(maxTokens)") }
    }

    /// A Megatron dataset prefix when `path` names one (PREFIX.bin / PREFIX.idx / PREFIX with PREFIX.idx).
    static func indexedPrefix(_ path: String) -> String? {
        for ext in [".bin", ".idx"] where path.hasSuffix(ext) { return String(path.dropLast(ext.count)) }
        if PileReader.Format.infer(fromPath: path) == nil, FileManager.default.fileExists(atPath: path + ".idx") { return path }
        return nil
    }

    func run() throws {
        let start = DispatchTime.now()
        let prefix = Self.indexedPrefix(data)
        if prefix == nil { _ = try requireFile(data, what: "corpus") }
        if prefix != nil && (window != nil || stride != nil || perDocument) {
            throw EvalInputError("--window, --stride and --per-document apply to text corpora; .bin rows use Pythia's convention (input = row[:-1], targets = row[1:])")
        }
        let setup = try modelOptions.load()
        let maxPositions = setup.model.config.maxPositionEmbeddings
        let scorer = BatchScorer(model: setup.model)
        var accumulator = PerplexityAccumulator(scorer: scorer)
        var budget = maxTokens ?? Int.max
        var convention: String
        var mode: String
        var windowing: StridedWindows?
        var units = 0          // documents or rows used

        if let prefix {
            mode = "rows"
            let dataset = try IndexedDataset(prefix: prefix)
            var selected = try RowSelection.rows(step: nil, batchSize: 0, rows: rows, rowCount: dataset.count)
            if let limit { selected = Array(selected.prefix(limit)) }
            convention = "Pythia training convention: input = row[:-1], targets = row[1:] (each row scored on its own, every token after the row's first)"
            for r in selected where budget > 0 {
                var row = try dataset.row(r)
                if row.count - 1 > maxPositions {
                    throw EvalInputError("\(prefix).bin row \(r) has \(row.count) tokens: its input of \(row.count - 1) exceeds the model's context (max_position_embeddings = \(maxPositions))")
                }
                if row.count - 1 > budget { row = Array(row.prefix(budget + 1)) }
                let job = ShiftedRow.job(for: row)
                budget -= job.targets.count
                try accumulator.add(job, owner: r)
                units += 1
            }
        } else {
            mode = perDocument ? "per-document" : "packed"
            let T = window ?? maxPositions
            guard T <= maxPositions else {
                throw EvalInputError("--window \(T) exceeds the model's context (max_position_embeddings = \(maxPositions))")
            }
            let windows = try StridedWindows(window: T, stride: stride ?? max(1, T / 2))
            windowing = windows
            convention = (perDocument ? "each document is its own stream (no EOD); " : "documents packed into one stream, each followed by EOD (id \(eod)); ")
                + windows.description
            let range = try rows.map { try RowSelection.parseRange($0, upperLimit: Int.max) } ?? 0..<Int.max
            let reader = try PileReader(path: data)
            var stream = try reader.makeStream()
            var packed = StridedWindowStream(windows)   // holds one window's tokens, not the corpus
            var index = -1
            let tokenizer = setup.tokenizer
            // Documents are read and tokenized in small groups, in parallel, and stop as soon as
            // the limits are reached.
            var finished = false
            while !finished {
                var group: [(Int, String)] = []
                while group.count < 64, let document = try stream.next() {
                    index += 1
                    if index < range.lowerBound { continue }
                    if index >= range.upperBound || (limit.map { units + group.count >= $0 } ?? false) { finished = true; break }
                    group.append((index, document.text))
                }
                if group.isEmpty { break }
                let encoded = try EvalConcurrency.map(group.map(\.1)) { try tokenizer.encode($0) }
                for (k, ids) in encoded.enumerated() {
                    guard budget > 0 else { finished = true; break }
                    units += 1
                    if perDocument {
                        let kept = ids.count - 1 > budget ? Array(ids.prefix(budget + 1)) : ids
                        let jobs = windows.jobs(for: kept)
                        budget -= jobs.reduce(0) { $0 + $1.targets.count }
                        for job in jobs { try accumulator.add(job, owner: group[k].0) }
                        if jobs.isEmpty { try accumulator.add(ScoringJob(tokens: [], targets: []), owner: group[k].0) }
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
            if units == 0 { throw EvalInputError("\(data): no documents selected (check --rows / --limit)") }
        }

        let (total, perOwner) = try accumulator.finish()
        guard total.tokens > 0 else {
            throw EvalInputError("\(data): nothing to score (every selected stream is shorter than 2 tokens)")
        }
        let seconds = EvalOutput.seconds(since: start)

        if json {
            var object = setup.provenance(command: "perplexity")
            object["data"] = JSONValue(URL(fileURLWithPath: data).standardizedFileURL.path)
            object["mode"] = JSONValue(mode)
            object["convention"] = JSONValue(convention)
            if let windowing { object["window"] = JSONValue(windowing.window); object["stride"] = JSONValue(windowing.stride) }
            if let rows { object["selection"] = JSONValue(rows) }
            if let limit { object["limit"] = JSONValue(limit) }
            if let maxTokens { object["max_tokens"] = JSONValue(maxTokens) }
            object["units"] = JSONValue(units)
            object["n"] = JSONValue(total.tokens)
            object["nll"] = JSONValue(total.nll)
            object["nll_sum"] = JSONValue(total.nllSum)
            object["perplexity"] = JSONValue(total.perplexity)
            object["seconds"] = JSONValue(seconds)
            if mode != "packed" {
                object[mode == "rows" ? "rows" : "documents"] = .array(perOwner.map {
                    ["index": JSONValue($0.owner), "tokens": JSONValue($0.total.tokens), "nll": JSONValue($0.total.nll),
                     "perplexity": JSONValue($0.total.perplexity)]
                })
            }
            try EvalOutput.printJSON(object)
        } else {
            print("model       \(setup.modelSummary)")
            if prefix == nil { print("tokenizer   \(setup.tokenizerURL.path)") }
            print("data        \(data) (\(mode), \(units) \(mode == "rows" ? "rows" : "documents"))")
            print("convention  \(convention)")
            if mode != "packed" {
                for item in perOwner {
                    print("  \(mode == "rows" ? "row" : "doc") \(item.owner): \(item.total.tokens) tokens, nll \(EvalOutput.format(item.total.nll)), perplexity \(EvalOutput.format(item.total.perplexity))")
                }
            }
            print("tokens      \(total.tokens) scored")
            print("nll         \(EvalOutput.format(total.nll, digits: 6)) nats/token")
            print("perplexity  \(EvalOutput.format(total.perplexity, digits: 6))")
            print("time        \(EvalOutput.format(seconds, digits: 2)) s")
        }
    }
}
