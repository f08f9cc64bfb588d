import ArgumentParser

/// `--rows a:b`, `a:`, `:b` or `a`: 0-based indices `a..<b` (b exclusive), either end open until
/// the data says how many rows there are; `a` alone is the one row `a`.
///
/// Parsed while the arguments are, so a malformed or overflowing range is an argument error
/// that names the flag, before any model or dataset is opened.
struct RowRange: ExpressibleByArgument, CustomStringConvertible, Equatable, Sendable {
    /// The first index as given (nil: `:b`, from 0).
    private(set) var lower: Int?
    /// One past the last index (nil: `a:`, to the end).
    private(set) var upper: Int?
    /// Written as a single index `a`.
    private(set) var isSingle = false

    var lowerBound: Int { lower ?? 0 }
    var upperBound: Int? { upper }

    static func parse(_ text: String) throws -> RowRange {
        let trimmed = text.filter { $0 != " " }
        guard !trimmed.isEmpty else { throw ValidationError("give a:b, a:, :b or a") }
        let parts = trimmed.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        func index(_ part: Substring) throws -> Int? {
            if part.isEmpty { return nil }
            guard let value = Int(part) else {
                throw ValidationError("'\(part)' is not a row index (a whole number from 0 to \(Int.max))")
            }
            guard value >= 0 else { throw ValidationError("row indices start at 0, got \(value)") }
            return value
        }
        var range = RowRange()
        range.lower = try index(parts[0])
        if parts.count == 1 {
            guard let single = range.lower, single < Int.max else { throw ValidationError("row \(trimmed) is past any dataset") }
            range.upper = single + 1
            range.isSingle = true
        } else {
            range.upper = try index(parts[1])
            if let upper = range.upper, upper <= range.lowerBound {
                throw ValidationError("\(trimmed) selects nothing (the end is exclusive)")
            }
        }
        return range
    }

    init?(argument: String) {
        guard let range = try? Self.parse(argument) else { return nil }
        self = range
    }

    private init() {}

    /// The canonical text (`a:b`, `a:`, `:b`, `a`), as the libraries parse it and results record it.
    var description: String {
        if isSingle { return "\(lowerBound)" }
        return (lower.map(String.init) ?? "") + ":" + (upper.map(String.init) ?? "")
    }
}
