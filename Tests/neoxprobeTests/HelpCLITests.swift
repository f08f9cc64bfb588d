import Foundation
import TestSupport
import XCTest

/// `--help` of the command and of every subcommand: exit 0, and the main flags are documented.
final class HelpCLITests: XCTestCase {
    static let mainFlags: [String: [String]] = [
        "run": ["--model", "--tokenizer", "--gelu", "--tokens", "--text", "--truncate", "--hooks", "--out"],
        "tokenize": ["--tokenizer", "--model", "--decode", "<input>"],
        "batch": ["--data", "--step", "--batch-size", "--rows", "--decode", "--tokenizer"],
        "perplexity": ["--model", "--tokenizer", "--gelu", "--data", "--window", "--stride", "--per-document",
                       "--rows", "--limit", "--max-tokens", "--eod", "--json"],
        "lambada": ["--model", "--tokenizer", "--gelu", "--data", "--limit", "--json", "--per-example"],
        "sweep": ["--suite", "--steps", "--data", "--rows", "--batch-of-step", "--batch-size", "--seq-len",
                  "--max-sequences", "--probes", "--out", "--reference-step", "--cka-minibatch", "--lambada-data",
                  "--lambada-limit", "--gelu", "--tokenizer", "--top-k", "--tokens-per-batch", "--quiet"],
        "report": ["<results>", "--output"],
    ]

    func testEverySubcommandDocumentsItsMainFlags() throws {
        for (subcommand, flags) in Self.mainFlags {
            let outcome = try CommandRunner.run([subcommand, "--help"])
            XCTAssertEqual(outcome.status, 0, "\(subcommand) --help: \(outcome.standardError)")
            XCTAssertTrue(outcome.output.contains("USAGE: neoxprobe \(subcommand)"), "\(subcommand) --help:\n\(outcome.output)")
            for flag in flags {
                XCTAssertTrue(outcome.output.contains(flag), "\(subcommand) --help does not mention \(flag):\n\(outcome.output)")
            }
        }
    }

    func testTopLevelHelpListsEverySubcommand() throws {
        let outcome = try CommandRunner.run(["--help"])
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        for subcommand in Self.mainFlags.keys {
            XCTAssertTrue(outcome.output.contains("  \(subcommand) "), "neoxprobe --help does not list \(subcommand):\n\(outcome.output)")
        }
    }

    func testUnknownSubcommandIsAnArgumentError() throws {
        let outcome = try CommandRunner.run(["perplexty"])
        XCTAssertEqual(outcome.status, 64, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("perplexty"), outcome.standardError)
    }
}
