import ArgumentParser
import Corpus

/// `--rows a:b`, `a:`, `:b` or `a`: Corpus's `RowSpec` as an argument.
///
/// Parsed while the arguments are, so a malformed or overflowing range is an argument error
/// that names the flag, before any model or dataset is opened.
struct RowRange: ExpressibleByArgument, CustomStringConvertible, Equatable, Sendable {
    let spec: RowSpec

    var lowerBound: Int { spec.lower ?? 0 }
    var upperBound: Int? { spec.upper }

    static func parse(_ text: String) throws -> RowRange {
        do { return RowRange(spec: try RowSpec(parsing: text)) } catch let error as CorpusError {
            throw ValidationError(error.message)
        }
    }

    init?(argument: String) {
        guard let range = try? Self.parse(argument) else { return nil }
        self = range
    }

    private init(spec: RowSpec) { self.spec = spec }

    /// The canonical text (`a:b`, `a:`, `:b`, `a`), as the libraries parse it and results record it.
    var description: String { spec.description }
}
