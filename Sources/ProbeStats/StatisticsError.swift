/// The one error type of the ProbeStats module.
public struct StatisticsError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// LAPACK reported a failure (workspace query, non-convergence).
        case lapackFailure
        /// The buffers handed in do not fit the statistic (sizes, shapes).
        case invalidInput
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
