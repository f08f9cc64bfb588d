import ArgumentParser
import Corpus
import Evaluation
import Foundation

/// `neoxprobe lambada`: LAMBADA accuracy and perplexity, computed as lm-evaluation-harness 0.4.5's
/// `lambada_openai` task computes them with its `hf` model, but with logits only at the targets.
struct LambadaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lambada",
        abstract: "LAMBADA (OpenAI) accuracy and perplexity, matching lm-evaluation-harness's lambada_openai.",
        discussion: """
        Each line's text is split at its last space: context = all words but the last, target = ' ' + last word. \
        The pair is encoded as the harness does for a causal model (trailing whitespace of the context moves to \
        the target; target tokens = encode(context + target) minus encode(context); an empty context becomes \
        <|endoftext|>), inputs longer than the context are left-truncated, and
          acc        = fraction of examples whose every target token is the argmax,
          perplexity = exp(-mean over examples of the target's summed log-likelihood).
        """)

    static let defaultData = "../shared/data/lambada/lambada_test.jsonl"

    /// The default data file: the first of `SearchPaths.lambada` that exists, or an error listing
    /// where it looked and naming the flag.
    static func locateDefaultData() throws -> String {
        if let url = SearchPaths.firstFile(SearchPaths.lambada) { return url.path }
        throw CommandFailure("no LAMBADA data found; looked in: \(SearchPaths.lambada.map(\.path).joined(separator: ", ")). "
            + "Pass --data FILE (lambada_test.jsonl, one {\"text\": ...} a line), or install it (make install)")
    }

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "LAMBADA jsonl, one {\"text\": ...} a line (default: \(defaultData) beside the current directory or the checkout the executable was built in, else PREFIX/share/neoxprobe/data/lambada/ of make install).")
    var data: String?

    @Option(name: .long, help: "Evaluate only the first N examples.")
    var limit: Int?

    @Flag(name: .long, help: "Print one JSON object (results and provenance) instead of text.")
    var json = false

    @Flag(name: .long, help: "Include every example's log-likelihood and greedy flag in the JSON.")
    var perExample = false

    @Flag(name: .long, help: "Show progress on standard error even when it is not a terminal (on a terminal it always is).")
    var progress = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
    }

    func run() throws {
        let start = DispatchTime.now()
        let dataPath = try data.map { try requireFile($0, what: "LAMBADA data") } ?? Self.locateDefaultData()
        let setup = try modelOptions.loadEvalSetup()
        let examples = try LambadaDataset.load(path: dataPath)
        let loaded = WallClock.seconds(since: start)
        var evaluator = LambadaEvaluator(model: setup.model, tokenizer: setup.tokenizer)
        let requests = try evaluator.requests(for: Array(examples.prefix(limit ?? examples.count)))
        let inputTokens = requests.reduce(0) { $0 + min($1.context.count + $1.continuation.count - 1, evaluator.maxLength) }
        let line = ProgressLine.make("lambada", total: inputTokens, forced: progress)
        if let line { evaluator.scorer.progress = { line.advance($0) } }
        let result = try evaluator.evaluate(requests: requests)
        line?.finish()
        let total = WallClock.seconds(since: start)

        if json {
            var object = setup.provenance(command: "lambada")
            object["task"] = "lambada_openai (lm-evaluation-harness 0.4.5 formulas)"
            object["data"] = JSONValue(URL(fileURLWithPath: dataPath).standardizedFileURL.path)
            object["n"] = JSONValue(result.n)
            object["acc"] = JSONValue(result.acc)
            object["perplexity"] = JSONValue(result.perplexity)
            object["mean_loglikelihood"] = JSONValue(result.meanLogLikelihood)
            object["max_length"] = JSONValue(evaluator.maxLength)
            object["truncated_examples"] = JSONValue(result.truncatedCount)
            object["input_tokens"] = JSONValue(result.inputTokens)
            object["convention"] = JSONValue("context = text.split(' ')[:-1] joined by ' ', target = ' ' + last word; "
                + "harness _encode_pair tokenization; left truncation to max_length; "
                + "acc = all target tokens greedy; perplexity = exp(-mean summed target loglikelihood)")
            object["seconds"] = ["load": JSONValue(loaded), "total": JSONValue(total)]
            if perExample {
                object["examples"] = .array(result.examples.map {
                    ["index": JSONValue($0.index), "loglikelihood": JSONValue($0.logLikelihood), "greedy": .bool($0.isGreedy),
                     "context_tokens": JSONValue($0.contextTokens), "target_tokens": JSONValue($0.targetTokens)]
                })
            }
            try EvalOutput.printJSON(object)
        } else {
            print("model       \(setup.modelSummary)")
            print("tokenizer   \(setup.tokenizerURL.path)")
            print("data        \(dataPath) (\(result.n) of \(examples.count) examples)")
            print("method      lm-evaluation-harness 0.4.5 lambada_openai (context/target split, _encode_pair, left truncation to \(evaluator.maxLength))")
            print("acc         \(EvalOutput.format(result.acc, digits: 6))")
            print("perplexity  \(EvalOutput.format(result.perplexity, digits: 6))")
            if result.truncatedCount > 0 { print("truncated   \(result.truncatedCount) examples left-truncated to \(evaluator.maxLength) tokens") }
            print("time        \(EvalOutput.format(total, digits: 2)) s (\(result.inputTokens) input tokens)")
        }
    }
}
