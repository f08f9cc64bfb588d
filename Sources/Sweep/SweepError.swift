/// The one error type of the Sweep module.
///
/// Messages state facts in the library's terms ("sequence length 1 is below the minimum of 2");
/// `option` says which setting they are about, so a front end can name it its own way (the
/// command line prefixes its flag) without the library knowing how options are spelled there.
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
    /// The setting at fault, when one is (nil for cache failures and internal errors).
    public var option: SweepOptions.Field?
    public var message: String

    public init(_ kind: Kind, option: SweepOptions.Field? = nil, _ message: String) {
        self.kind = kind
        self.option = option
        self.message = message
    }

    public var description: String { message }
}
