import Foundation

/// Token ids as people write them for `--tokens`: one sequence per line, ids separated by
/// whitespace, `@FILE` or inline. Lines end in LF or CRLF (Swift reads "\r\n" as one Character,
/// so lines are split on any newline, not on "\n" alone); blank lines are skipped.
struct TokenFile {
    /// The sequences, in order, with the 1-based line each came from.
    let rows: [(line: Int, ids: [Int32])]
    /// The file name, or `--tokens` for inline ids (for messages).
    let name: String

    /// Parses `--tokens` (`@FILE` or the ids themselves).
    init(argument: String) throws {
        let source: String
        if argument.hasPrefix("@") {
            name = String(argument.dropFirst())
            guard let data = FileManager.default.contents(atPath: name) else { throw CommandFailure("cannot read token file \(name)") }
            source = String(decoding: data, as: UTF8.self)
        } else {
            name = "--tokens"
            source = argument
        }
        var rows: [(line: Int, ids: [Int32])] = []
        for (number, line) in source.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(whereSeparator: \.isWhitespace)
            if fields.isEmpty { continue }
            var ids: [Int32] = []
            for field in fields {
                guard let id = Int32(field) else { throw CommandFailure("\(name):\(number + 1): '\(field)' is not an integer token id") }
                ids.append(id)
            }
            rows.append((number + 1, ids))
        }
        guard !rows.isEmpty else { throw CommandFailure("\(name): no token ids (empty input)") }
        self.rows = rows
    }

    /// The sequences as one batch: every line must have the same length.
    func batch() throws -> [[Int32]] {
        let first = rows[0]
        for row in rows where row.ids.count != first.ids.count {
            throw CommandFailure("\(name): all lines must have the same number of tokens to form a batch: line \(first.line) has \(first.ids.count), line \(row.line) has \(row.ids.count)")
        }
        return rows.map(\.ids)
    }
}
