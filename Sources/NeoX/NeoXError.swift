import Foundation

/// The one error type of the engine: what a forward pass was asked that it cannot do. (Problems
/// with files on disk are the Formats module's `FormatError`.) `kind` lets callers and tests tell
/// problems apart without parsing the message.
public struct NeoXError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The token batch is unusable: empty, ragged, too long, or an id outside the vocabulary.
        case invalidInput
        /// A hook name or pattern that this model does not emit.
        case unknownHook
        /// A parameter name or pattern that matches none of this model's parameters.
        case unknownParameter
        /// The request needs weights the model was loaded without (later blocks, the unembedding).
        case notLoaded
        /// A request argument out of range (logit positions, buffer sizes, layer counts).
        case invalidRequest
        /// An intervention that cannot be carried out: an index outside the hook, a patch or
        /// vector of the wrong shape, an edit that would change nothing.
        case invalidIntervention
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
