import Foundation
import TestSupport
import XCTest

/// Every numeric flag of every subcommand with values past Int64, at Int.max, or large enough to
/// overflow arithmetic or an allocation: each must be an orderly error naming the flag (or a
/// normal run where a huge bound is harmless), never a trap or an allocation abort.
final class NumericFlagCLITests: XCTestCase {
    static let pastInt64 = "99999999999999999999"
    static let intMax = String(Int.max)

    /// Values ArgumentParser or `validate()` refuse before anything is opened.
    func testArgumentErrors() throws {
        let out = try CLI.temporaryDirectory(self).appendingPathComponent("out").path
        let cases: [([String], [String])] = [
            (["run", "--model", "m", "--tokens", "1", "--hooks", "*", "--out", out, "--repeats", Self.pastInt64], ["--repeats"]),
            (["run", "--model", "m", "--tokens", "1", "--hooks", "*", "--out", out, "--repeats", Self.intMax], ["--repeats"]),
            (["batch", "--data", "d", "--step", Self.pastInt64], ["--step"]),
            (["batch", "--data", "d", "--step", Self.intMax, "--batch-size", "2"], ["--step", Self.intMax]),
            (["batch", "--data", "d", "--step", "0", "--batch-size", "1000000000000"], ["--batch-size", "1000000000000"]),
            (["batch", "--data", "d", "--rows", Self.intMax], ["--rows", Self.intMax]),
            (["batch", "--data", "d", "--rows", "0:" + Self.pastInt64], ["--rows", Self.pastInt64]),
            (["perplexity", "--model", "m", "--data", "d", "--limit", Self.pastInt64], ["--limit"]),
            (["perplexity", "--model", "m", "--data", "d", "--max-tokens", Self.pastInt64], ["--max-tokens"]),
            (["perplexity", "--model", "m", "--data", "d", "--window", Self.pastInt64], ["--window"]),
            (["perplexity", "--model", "m", "--data", "d", "--stride", Self.pastInt64], ["--stride"]),
            (["perplexity", "--model", "m", "--data", "d", "--eod", "99999999999"], ["--eod"]),
            (["perplexity", "--model", "m", "--data", "d", "--rows", Self.pastInt64 + ":"], ["--rows"]),
            (["lambada", "--model", "m", "--limit", Self.pastInt64], ["--limit"]),
            (["sweep", "--suite", "s", "--out", out, "--batch-size", "1000000000000"], ["--batch-size"]),
            (["sweep", "--suite", "s", "--out", out, "--batch-of-step", Self.intMax], ["--batch-of-step"]),
            (["sweep", "--suite", "s", "--out", out, "--batch-of-step", Self.pastInt64], ["--batch-of-step"]),
            (["sweep", "--suite", "s", "--out", out, "--cka-minibatch", "1000000000000"], ["--cka-minibatch"]),
            (["sweep", "--suite", "s", "--out", out, "--seq-len", Self.pastInt64], ["--seq-len"]),
            (["sweep", "--suite", "s", "--out", out, "--max-sequences", Self.pastInt64], ["--max-sequences"]),
            (["sweep", "--suite", "s", "--out", out, "--top-k", Self.pastInt64], ["--top-k"]),
            (["sweep", "--suite", "s", "--out", out, "--tokens-per-batch", Self.pastInt64], ["--tokens-per-batch"]),
            (["sweep", "--suite", "s", "--out", out, "--reference-step", Self.pastInt64], ["--reference-step"]),
            (["sweep", "--suite", "s", "--out", out, "--weights-reference-step", Self.pastInt64], ["--weights-reference-step"]),
            (["sweep", "--suite", "s", "--out", out, "--lambada-limit", Self.pastInt64], ["--lambada-limit"]),
            (["sweep", "--suite", "s", "--out", out, "--steps", "0," + Self.pastInt64], ["--steps"]),
            (["sweep", "--suite", "s", "--out", out, "--rows", Self.intMax], ["--rows"]),
            (["sweep", "--suite", "s", "--out", out, "--histogram-bins", Self.pastInt64], ["--histogram-bins"]),
            (["sweep", "--suite", "s", "--out", out, "--correlation-tokens", Self.pastInt64], ["--correlation-tokens"]),
            (["sweep", "--suite", "s", "--out", out, "--svd-directions", Self.pastInt64], ["--svd-directions"]),
            (["sweep", "--suite", "s", "--out", out, "--svd-tokens", Self.pastInt64], ["--svd-tokens"]),
        ]
        for (arguments, needles) in cases {
            let outcome = try CLI.run(arguments)
            assertFails(outcome, as: .argument, mentioning: needles)
        }
    }

    /// Values that only the data can rule out: errors without the usage block.
    func testDataErrors() throws {
        try CLI.requireShared()
        let out = try CLI.temporaryDirectory(self).appendingPathComponent("out").path
        let model = CLI.model.path, text = CLI.validation.path, rows = CLI.dataset.path
        let sweep = ["sweep", "--suite", CLI.suite.path, "--steps", "0", "--data", rows, "--seq-len", "16", "--out", out, "--quiet"]
        let cases: [([String], [String])] = [
            (["run", "--model", model, "--tokens", "1 99999999999", "--hooks", "*", "--out", out], ["99999999999"]),
            (["batch", "--data", rows, "--rows", "0:" + Self.intMax], ["--rows", Self.intMax]),
            (["perplexity", "--model", model, "--data", text, "--window", Self.intMax], ["--window", Self.intMax]),
            (["perplexity", "--model", model, "--data", text, "--window", "64", "--stride", Self.intMax], ["--stride", Self.intMax]),
            (["perplexity", "--model", model, "--data", rows, "--rows", "0:" + Self.intMax], ["--rows", Self.intMax]),
            (["perplexity", "--model", model, "--data", text, "--rows", Self.intMax + ":"], ["--rows", text]),
            (sweep + ["--rows", "0:" + Self.intMax], ["--rows", Self.intMax]),
            (sweep + ["--rows", "0:1", "--seq-len", Self.intMax], ["--seq-len", Self.intMax]),
            (sweep + ["--rows", "0:1", "--reference-step", Self.intMax], ["--reference-step", Self.intMax]),
            (sweep + ["--rows", "0:1", "--weights-reference-step", Self.intMax, "--probes", "weights"], ["--weights-reference-step", Self.intMax]),
            (sweep + ["--rows", "0:1", "--probes", "activation_histograms", "--histogram-bins", Self.intMax], ["--histogram-bins", Self.intMax]),
            (sweep + ["--rows", "0:1", "--probes", "embeddings", "--correlation-tokens", Self.intMax], ["--correlation-tokens", Self.intMax]),
            (sweep + ["--rows", "0:1", "--probes", "svd_directions", "--svd-directions", Self.intMax], ["--svd-directions", Self.intMax]),
            (sweep + ["--rows", "0:1", "--probes", "svd_directions", "--svd-tokens", "0"], ["--svd-tokens", "0"]),
        ]
        for (arguments, needles) in cases {
            assertFails(try CLI.run(arguments), as: .data, mentioning: needles)
        }
    }

    /// Huge limits and budgets are bounds, not sizes: a run with them is an ordinary run.
    func testHugeBoundsAreHarmless() throws {
        try CLI.requireShared()
        let directory = try CLI.temporaryDirectory(self)
        let perplexity = try CLI.run(["perplexity", "--model", CLI.model.path, "--data", CLI.validation.path, "--rows", "1:2",
                                      "--window", "128", "--limit", Self.intMax, "--max-tokens", Self.intMax, "--json"])
        XCTAssertEqual(try CLI.json(perplexity)["units"] as? Int, 1)

        let lambada = directory.appendingPathComponent("two.jsonl")
        let lines = try String(contentsOf: CLI.lambada, encoding: .utf8).split(separator: "\n").prefix(2)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: lambada)
        let evaluated = try CLI.run(["lambada", "--model", CLI.model.path, "--data", lambada.path, "--limit", Self.intMax, "--json"])
        XCTAssertEqual(try CLI.json(evaluated)["n"] as? Int, lines.count)

        let sweep = try CLI.run(["sweep", "--suite", CLI.suite.path, "--steps", "0", "--data", CLI.dataset.path, "--rows", "0:1",
                                 "--seq-len", "16", "--probes", "outliers", "--tokens-per-batch", Self.intMax,
                                 "--out", directory.appendingPathComponent("results").path, "--quiet"])
        XCTAssertEqual(sweep.status, 0, sweep.standardError)
        // --top-k is a count of dimensions, not a bound: more than the hidden size is refused, by name.
        let topK = try CLI.run(["sweep", "--suite", CLI.suite.path, "--steps", "0", "--data", CLI.dataset.path, "--rows", "0:1",
                                "--seq-len", "16", "--probes", "outliers", "--top-k", Self.intMax,
                                "--out", directory.appendingPathComponent("results-top-k").path, "--quiet"])
        XCTAssertEqual(topK.status, 1, topK.standardError)
        XCTAssertTrue(topK.standardError.contains("--top-k: "), topK.standardError)
    }
}
