/// The one error type of the Results module: a results file that cannot be read or parsed.
public struct ResultsError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The file could not be read.
        case io
        /// The file is not a metrics table of the expected shape.
        case malformed
    }

    public var kind: Kind
    public var path: String?
    /// 1-based line number within the file, when the problem is on one line.
    public var line: Int?
    public var message: String

    public init(_ kind: Kind, _ message: String, path: String? = nil, line: Int? = nil) {
        self.kind = kind
        self.message = message
        self.path = path
        self.line = line
    }

    public var description: String {
        var location = path ?? ""
        if let line { location += location.isEmpty ? "line \(line)" : ":\(line)" }
        return location.isEmpty ? message : "\(location): \(message)"
    }
}
