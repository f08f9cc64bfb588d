import Foundation
import TestSupport
import XCTest
@testable import Formats

/// Issue 14, tried as a new user would: text from standard input or inline, the trailing newline
/// and BOS stated and switchable, defaults that do not depend on the current directory, and
/// argument errors in the subcommand's terms.
final class NewUserCLITests: XCTestCase {
    /// `T` of the `[1, T, d]` activation `run` wrote.
    private func length(_ out: URL) throws -> Int {
        try XCTUnwrap(try SafeTensors.read(out)["blocks.0.hook_resid_pre"]).shape[1]
    }

    private func run(_ input: [String], stdin: Data? = nil, in directory: URL = RepositoryPaths.root, out: URL) throws -> Int {
        let outcome = try CommandRunner.run(["run", "--model", CLI.model.path, "--hooks", "blocks.0.hook_resid_pre", "--out", out.path] + input,
                                            in: directory, input: stdin)
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        return try length(out)
    }

    /// `--text -` reads standard input, `--prompt` takes the text inline; both tokenize exactly as a
    /// file does (its final newline is a token), `--strip` drops it, `--prepend-bos` adds one token
    /// first, and that first position's residual is the embedding of bos_token_id (0 for Pythia).
    func testStdinPromptStripAndPrependBOS() throws {
        try CLI.requireShared()
        let directory = try CLI.temporaryDirectory(self)
        let out = directory.appendingPathComponent("acts.safetensors")
        let file = directory.appendingPathComponent("text.txt")
        let text = "The quick brown fox jumps over the lazy dog.\n"
        try Data(text.utf8).write(to: file)
        let fromFile = try run(["--text", file.path], out: out)
        XCTAssertEqual(try run(["--text", "-"], stdin: Data(text.utf8), out: out), fromFile)
        XCTAssertEqual(try run(["--prompt", text], out: out), fromFile)
        XCTAssertEqual(try run(["--text", file.path, "--strip"], out: out), fromFile - 1, "the final newline is one token")
        XCTAssertEqual(try run(["--prompt", "The quick brown fox jumps over the lazy dog."], out: out), fromFile - 1)
        XCTAssertEqual(try run(["--text", file.path, "--strip", "--prepend-bos"], out: out), fromFile)
        // Position 0 with --prepend-bos is the embedding row of token 0.
        let resid = try XCTUnwrap(try SafeTensors.read(out)["blocks.0.hook_resid_pre"]).float32()
        let checkpoint = try Checkpoint(directory: CLI.model)
        let d = checkpoint.config.hiddenSize
        let embedding = try checkpoint.tensor("gpt_neox.embed_in.weight", shape: [checkpoint.config.vocabSize, d])
        XCTAssertEqual(Array(resid[0..<d]), Array(embedding[0..<d]))
        // The help says both conventions.
        let help = try CLI.run(["run", "--help"]).output
        XCTAssertTrue(help.contains("TransformerLens") && help.contains("--prepend-bos") && help.contains("trailing newline"), help)
        assertFails(try CLI.run(["run", "--model", CLI.model.path, "--tokens", "1 2", "--strip", "--hooks", "*", "--out", out.path]),
                    as: .argument, mentioning: ["--strip applies only to --text and --prompt"])
    }

    /// From another directory the defaults still resolve (tokenizer and LAMBADA are found relative
    /// to the executable's checkout), so `tokenize` and `lambada` work from /tmp.
    func testDefaultsDoNotDependOnTheCurrentDirectory() throws {
        try CLI.requireShared()
        let elsewhere = try CLI.temporaryDirectory(self)
        let input = elsewhere.appendingPathComponent("in.txt")
        try Data("Hello world".utf8).write(to: input)
        let tokenized = try CommandRunner.run(["tokenize", input.path], in: elsewhere)
        XCTAssertEqual(tokenized.status, 0, tokenized.standardError)
        XCTAssertEqual(tokenized.output.trimmingCharacters(in: .whitespacesAndNewlines), "12092 1533")
        let lambada = try CommandRunner.run(["lambada", "--model", CLI.model.path, "--limit", "2", "--json"], in: elsewhere)
        XCTAssertEqual(lambada.status, 0, lambada.standardError)
        // A tokenizer that cannot be found names the flag to pass.
        let missing = try CommandRunner.run(["run", "--model", elsewhere.path, "--prompt", "x", "--hooks", "*", "--out", "x.safetensors"], in: elsewhere)
        XCTAssertNotEqual(missing.status, 0)
    }

    /// `lambada` and `perplexity` report progress on standard error with --progress (always on a
    /// terminal); standard output keeps only the result.
    func testEvaluationsShowProgressOnStandardError() throws {
        try CLI.requireShared()
        let lambada = try CLI.run(["lambada", "--model", CLI.model.path, "--limit", "3", "--json", "--progress"])
        XCTAssertEqual(lambada.status, 0, lambada.standardError)
        XCTAssertTrue(lambada.standardError.contains("lambada: ") && lambada.standardError.contains("input tokens scored")
                      && lambada.standardError.contains("(100%)") && lambada.standardError.contains("done"), lambada.standardError)
        XCTAssertNoThrow(try CLI.json(lambada))
        let perplexity = try CLI.run(["perplexity", "--model", CLI.model.path, "--data", CLI.validation.path, "--limit", "2", "--progress"])
        XCTAssertEqual(perplexity.status, 0, perplexity.standardError)
        XCTAssertTrue(perplexity.standardError.contains("perplexity: ") && perplexity.standardError.contains("done"), perplexity.standardError)
        XCTAssertFalse(perplexity.output.contains("tokens scored"), perplexity.output)
        let quiet = try CLI.run(["lambada", "--model", CLI.model.path, "--limit", "1", "--json"])
        XCTAssertFalse(quiet.standardError.contains("input tokens scored"), "no terminal, no --progress: no progress")
        // run: progress counted in token-blocks (tokens through each block of the pass), to 100%.
        let out = try CLI.temporaryDirectory(self).appendingPathComponent("acts.safetensors").path
        let run = try CLI.run(["run", "--model", CLI.model.path, "--prompt", "def main():", "--hooks", "blocks.*.hook_resid_post",
                               "--out", out, "--repeats", "2", "--progress"])
        XCTAssertEqual(run.status, 0, run.standardError)
        XCTAssertTrue(run.standardError.contains("run: ") && run.standardError.contains("token-blocks")
                      && run.standardError.contains("(100%)") && run.standardError.contains("done"), run.standardError)
        XCTAssertFalse(run.output.contains("token-blocks"), run.output)
    }

    /// A mistyped option is reported as unknown (not as the missing option it was meant to be), with
    /// the subcommand's usage, not the top-level one.
    func testUnknownOptionAndSubcommandUsage() throws {
        _ = try CommandRunner.executable()
        let outcome = try CLI.run(["lambada", "--modle", "x"])
        assertFails(outcome, as: .argument, mentioning: ["Unknown option '--modle'"])
        XCTAssertTrue(outcome.standardError.contains("Usage: neoxprobe lambada"), outcome.standardError)
        XCTAssertFalse(outcome.standardError.contains("Missing expected argument '--model"), outcome.standardError)
        let invalid = try CLI.run(["run", "--model", "x", "--hooks", "*", "--out", "y"])
        assertFails(invalid, as: .argument, mentioning: ["give exactly one of"])
        XCTAssertTrue(invalid.standardError.contains("Usage: neoxprobe run"), invalid.standardError)
    }
}
