import ArgumentParser
import Formats
import Foundation
import Tokenizers

/// `neoxprobe tokenize`: text → ids (one line, space-separated) or, with `--decode`, ids → text.
/// The whole input is read as raw bytes, so ids are exactly those of the file, newlines included.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode a file (or stdin) to token ids on one line, or decode such a line with --decode.")

    @OptionGroup var tokenizerOptions: TokenizerOptions

    @Option(name: .long, help: "Model directory to look for a tokenizer next to the weights.")
    var model: String?

    @Flag(name: .long, help: "Read space-separated ids and write the decoded text (no newline added).")
    var decode = false

    @Argument(help: "Input file, or - for standard input (default).")
    var input: String = "-"

    func run() throws {
        let url = try tokenizerOptions.locate(modelDirectory: model.map { URL(fileURLWithPath: $0, isDirectory: true) })
        let tok = try TokenizerLoader.load(url)
        let inputName = input == "-" ? "standard input" : input
        let bytes: [UInt8]
        if input == "-" {
            bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
        } else {
            guard let data = FileManager.default.contents(atPath: input) else {
                throw CommandFailure("cannot read input file \(input)")
            }
            bytes = Array(data)
        }
        if decode {
            let text = String(decoding: bytes, as: UTF8.self)
            var ids: [Int32] = []
            for field in text.split(whereSeparator: \.isWhitespace) {
                guard let id = Int32(field) else {
                    throw CommandFailure("\(inputName): \"\(field)\" is not an integer token id")
                }
                // The tokenizer skips unknown ids as HF's does; from a person's file they are a mistake.
                guard id >= 0, Int(id) < tok.vocabularySize else {
                    throw CommandFailure("\(inputName): token id \(id) is outside the tokenizer's vocabulary (0..<\(tok.vocabularySize))")
                }
                ids.append(id)
            }
            FileHandle.standardOutput.write(Data(try tok.decode(ids).utf8))
        } else {
            if let offset = UTF8Validation.firstInvalidOffset(bytes) {
                throw TokenizerError.invalidUTF8(input: inputName, offset: offset)
            }
            let ids = try tok.encode(utf8: bytes)
            var line = ids.map(String.init).joined(separator: " ")
            line.append("\n")
            FileHandle.standardOutput.write(Data(line.utf8))
        }
    }
}
