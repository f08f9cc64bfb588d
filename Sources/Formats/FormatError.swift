import Foundation

/// The one error type of the Formats module: every failure names the file (or model) and what is
/// wrong with it, so a researcher never has to guess which of 154 checkpoints is broken. `kind`
/// lets callers and tests tell problems apart without parsing the message.
public struct FormatError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The file could not be opened, stat'ed, mapped, read or written.
        case io
        /// A file or directory that should be there is not.
        case notFound
        /// The bytes are not a well-formed instance of the format (bad JSON, bad header, bad pickle).
        case malformed
        /// The file ends before the data its header promises.
        case truncated
        /// A checksum does not match.
        case corrupt
        /// Well-formed, but uses something this implementation does not run (a dtype, a model type).
        case unsupported
        /// A tensor the model needs is absent.
        case missingTensor
        /// A tensor's shape or byte span disagrees with config.json or its dtype.
        case shapeMismatch
        /// Weights hold NaN or ±inf (a diverged or damaged checkpoint): refused unless asked for.
        case nonFinite
        /// A value passed in by the caller is unusable (empty model specification, …).
        case invalidArgument
    }

    public var kind: Kind
    public var path: String?
    public var message: String

    public init(_ kind: Kind, _ message: String, path: String? = nil) {
        self.kind = kind
        self.message = message
        self.path = path
    }

    public init(_ kind: Kind, _ message: String, file: URL) {
        self.init(kind, message, path: file.path)
    }

    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }
}
