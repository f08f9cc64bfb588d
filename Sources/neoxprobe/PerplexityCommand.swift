import ArgumentParser
import Corpus
import Evaluation
import Foundation

/// `neoxprobe perplexity`: token-level mean NLL and perplexity of a model over a corpus, scored by
/// `PerplexityEvaluator`; this command only turns flags into a `PerplexityCorpus` and prints.
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

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Corpus: .jsonl, .jsonl.zst, .txt, or a Megatron dataset (PREFIX, PREFIX.bin, PREFIX.idx).")
    var data: String

    @Option(name: .long, help: "Window length in tokens for text corpora (default: the model's context, max_position_embeddings).")
    var window: Int?

    @Option(name: .long, help: "Stride between windows for text corpora (default: window / 2).")
    var stride: Int?

    @Flag(name: .long, help: "Score each document as its own stream and report each (text corpora).")
    var perDocument = false

    @Option(name: .long, help: ArgumentHelp("Documents (text) or rows (.bin) to use: a:b, a:, :b or a (0-based, b exclusive).", valueName: "a:b"),
            transform: RowRange.parse)
    var rows: RowRange?

    @Option(name: .long, help: "Use at most N documents or rows (after --rows).")
    var limit: Int?

    @Option(name: .long, help: "Score at most N tokens (streams are truncated once the budget is used).")
    var maxTokens: Int?

    @Option(name: .long, help: "End-of-document token appended after each packed document.")
    var eod: Int32 = 0

    @Flag(name: .long, help: "Print one JSON object (results and provenance) instead of text.")
    var json = false

    @Flag(name: .long, help: "Show progress on standard error even when it is not a terminal (on a terminal it always is).")
    var progress = false

    /// The flag behind each evaluator setting, for its errors.
    static let flags: [EvalError.Setting: String] = [
        .window: "--window", .stride: "--stride", .selection: "--rows", .limit: "--limit",
        .maxTokens: "--max-tokens", .endOfDocument: "--eod",
    ]

    func validate() throws {
        if let window, window < 2 { throw ValidationError("--window must be at least 2 tokens, got \(window)") }
        if let stride, stride < 1 { throw ValidationError("--stride must be at least 1 token, got \(stride)") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1, got \(maxTokens)") }
    }

    /// The corpus the flags describe; checked before the model is loaded, so a wrong path fails fast.
    func corpus() throws -> PerplexityCorpus {
        let selection = PerplexityCorpus.Selection(start: rows?.lowerBound ?? 0, end: rows?.upperBound,
                                                   limit: limit, maxTokens: maxTokens)
        if let prefix = IndexedDataset.prefix(forPath: data) {
            if window != nil || stride != nil || perDocument {
                throw CommandFailure("--window, --stride and --per-document apply to text corpora; .bin rows use Pythia's convention (input = row[:-1], targets = row[1:])")
            }
            return .rows(prefix: prefix, selection: selection)
        }
        _ = try requireFile(data, what: "corpus")
        let windowing = PerplexityCorpus.Windowing(window: window, stride: stride, perDocument: perDocument, endOfDocument: eod)
        return .text(path: data, windowing: windowing, selection: selection)
    }

    func run() throws {
        let start = DispatchTime.now()
        let corpus = try corpus()
        let setup = try modelOptions.loadEvalSetup()
        let result: PerplexityResult
        do {
            var evaluator = PerplexityEvaluator(model: setup.model, tokenizer: setup.tokenizer)
            let line = ProgressLine.make("perplexity", forced: progress)
            if let line { evaluator.scorer.progress = { line.advance($0) } }
            result = try evaluator.evaluate(corpus)
            line?.finish()
        } catch let error as EvalError {
            throw CommandFailure(error, flags: Self.flags)
        }
        let seconds = WallClock.seconds(since: start)
        if json {
            try EvalOutput.printJSON(jsonObject(result, setup: setup, seconds: seconds))
        } else {
            printText(result, setup: setup, seconds: seconds)
        }
    }

    func jsonObject(_ result: PerplexityResult, setup: EvalSetup, seconds: Double) -> [String: JSONValue] {
        var object = setup.provenance(command: "perplexity")
        object["data"] = JSONValue(URL(fileURLWithPath: data).standardizedFileURL.path)
        object["mode"] = JSONValue(result.mode.rawValue)
        object["convention"] = JSONValue(result.convention)
        if let windows = result.windows { object["window"] = JSONValue(windows.window); object["stride"] = JSONValue(windows.stride) }
        if let rows { object["selection"] = JSONValue(rows.description) }
        if let limit { object["limit"] = JSONValue(limit) }
        if let maxTokens { object["max_tokens"] = JSONValue(maxTokens) }
        object["units"] = JSONValue(result.unitCount)
        object["n"] = JSONValue(result.total.tokens)
        object["nll"] = JSONValue(result.total.nll)
        object["nll_sum"] = JSONValue(result.total.nllSum)
        object["perplexity"] = JSONValue(result.total.perplexity)
        object["seconds"] = JSONValue(seconds)
        if result.mode != .packed {
            object[result.mode == .rows ? "rows" : "documents"] = .array(result.units.map {
                ["index": JSONValue($0.index), "tokens": JSONValue($0.total.tokens), "nll": JSONValue($0.total.nll),
                 "perplexity": JSONValue($0.total.perplexity)]
            })
        }
        return object
    }

    func printText(_ result: PerplexityResult, setup: EvalSetup, seconds: Double) {
        let isRows = result.mode == .rows
        print("model       \(setup.modelSummary)")
        if !isRows { print("tokenizer   \(setup.tokenizerURL.path)") }
        print("data        \(data) (\(result.mode.rawValue), \(result.unitCount) \(isRows ? "rows" : "documents"))")
        print("convention  \(result.convention)")
        for unit in result.units {
            print("  \(isRows ? "row" : "doc") \(unit.index): \(unit.total.tokens) tokens, nll \(EvalOutput.format(unit.total.nll)), perplexity \(EvalOutput.format(unit.total.perplexity))")
        }
        print("tokens      \(result.total.tokens) scored")
        print("nll         \(EvalOutput.format(result.total.nll, digits: 6)) nats/token")
        print("perplexity  \(EvalOutput.format(result.total.perplexity, digits: 6))")
        print("time        \(EvalOutput.format(seconds, digits: 2)) s")
    }
}
