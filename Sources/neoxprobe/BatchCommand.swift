import ArgumentParser
import Corpus
import Foundation
import Tokenizers

/// `neoxprobe batch`: print the training rows a Pythia step consumed, from a Megatron
/// `PREFIX.bin`/`PREFIX.idx` dataset (Pythia's pre-shuffled Pile format).
struct BatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Print the token rows of a training step's batch (Megatron .bin/.idx dataset).",
        discussion: """
            Rows are printed as token ids, one row per line, space-separated (2049 ids a row for Pythia).

            --step N is the 0-based training step: it consumes samples N*B ..< (N+1)*B, and sample k \
            is row k mod (row count). A checkpoint named stepN was trained on steps 0..N-1, so the \
            last batch it saw is --step N-1 (e.g. the mini suite's step2000: --step 1999 --batch-size 4, \
            rows 7996..7999 mod 4391).

            --rows a:b selects batch positions a..b-1 of that step's batch; without --step it selects \
            absolute dataset rows a..b-1. Either bound may be omitted ("a:", ":b"); "a" alone is one row.

            --decode prints each row as text instead, after a "# row R" header line.
            """
    )

    @Option(name: .long, help: "Dataset prefix: PREFIX.idx and PREFIX.bin.")
    var data: String

    @Option(name: .long, help: "0-based training step whose batch to print.")
    var step: Int?

    @Option(name: .customLong("batch-size"), help: "Rows per step (Pythia: 1024; at most \(NumericLimits.maxBatchSize)).")
    var batchSize: Int = 1024

    @Option(name: .long, help: ArgumentHelp("a:b — batch positions a..b-1 with --step, absolute rows a..b-1 without.", valueName: "a:b"),
            transform: RowRange.parse)
    var rows: RowRange?

    @Flag(name: .long, help: "Print the rows decoded to text (needs a tokenizer).")
    var decode = false

    @OptionGroup var tokenizerOptions: TokenizerOptions

    func validate() throws {
        if step == nil && rows == nil {
            throw ValidationError("give --step N (a training step's batch) and/or --rows a:b")
        }
        try NumericLimits.checkBatch(step: step, batchSize: batchSize, stepFlag: "--step")
        if tokenizerOptions.tokenizer != nil && !decode { throw ValidationError("--tokenizer is only used with --decode") }
    }

    func run() throws {
        let dataset = try IndexedDataset(prefix: data)
        guard dataset.count > 0 else { throw CommandFailure("\(dataset.indexPath) has no rows") }
        let selected: [Int]
        do { selected = try RowSelection.rows(step: step, batchSize: batchSize, rows: rows?.description, rowCount: dataset.count) } catch let error as CorpusError where error.kind == .outOfRange {
            throw CommandFailure("--rows: \(error)")
        }

        let textTokenizer: (any TextTokenizer)?
        if decode {
            let url = try tokenizerOptions.locate(modelDirectory: nil)
            textTokenizer = try TokenizerLoader.load(url)
        } else {
            textTokenizer = nil
        }

        let output = FileHandle.standardOutput
        var buffer = ""
        buffer.reserveCapacity(1 << 20)
        for row in selected {
            let tokens = try dataset.row(row)
            if let textTokenizer {
                buffer += "# row \(row)\n"
                buffer += try textTokenizer.decode(tokens)
                buffer += "\n"
            } else {
                buffer += tokens.lazy.map(String.init).joined(separator: " ")
                buffer += "\n"
            }
            if buffer.utf8.count >= 1 << 20 {
                output.write(Data(buffer.utf8))
                buffer.removeAll(keepingCapacity: true)
            }
        }
        output.write(Data(buffer.utf8))
    }
}
