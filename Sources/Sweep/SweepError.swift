import Formats
import NeoX
import ProbeStats
import Results

/// The one error type of the Sweep module.
public struct SweepError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// An option value is out of range or options contradict each other.
        case invalidOption
        /// The suite, a checkpoint, a data file or a step is not there.
        case notFound
        /// The evaluation data cannot supply what was asked (too short, wrong format).
        case invalidData
        /// The results directory holds something else (another run's options, foreign files).
        case conflictingResults
        /// The reference activation cache could not be written or read back.
        case cache
        /// A broken invariant of the sweep itself (a bug, never bad input).
        case `internal`
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
