import Foundation

/// `--tokens @FILE` or inline ids: one sequence of whitespace-separated token ids per line, all
/// lines of equal length (a batch). Shared by the commands that take token ids.
enum TokenIDInput {
    static func parse(_ argument: String) throws -> [[Int32]] {
        let source: String, name: String
        if argument.hasPrefix("@") {
            name = String(argument.dropFirst())
            guard let data = FileManager.default.contents(atPath: name) else { throw CommandFailure("cannot read token file \(name)") }
            source = String(decoding: data, as: UTF8.self)
        } else {
            name = "--tokens"
            source = argument
        }
        var batch: [[Int32]] = [], lineNumbers: [Int] = []
        for (number, line) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            var row: [Int32] = []
            for field in fields {
                guard let id = Int32(field) else { throw CommandFailure("\(name):\(number + 1): '\(field)' is not an integer token id") }
                row.append(id)
            }
            batch.append(row)
            lineNumbers.append(number + 1)
        }
        guard let first = batch.first else { throw CommandFailure("\(name): no token ids (empty input)") }
        for (row, line) in zip(batch, lineNumbers) where row.count != first.count {
            throw CommandFailure("\(name): all lines must have the same number of tokens to form a batch: line \(lineNumbers[0]) has \(first.count), line \(line) has \(row.count)")
        }
        return batch
    }
}
