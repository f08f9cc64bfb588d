import Foundation

/// What went wrong talking to the Hub or writing its cache. Messages state facts (the URL, the
/// revision, the file, what the server said); the kind lets a caller tell a missing revision from
/// a missing file, a gated repository from a dead network.
public struct HubError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// Nothing listens at the endpoint, or the host cannot be resolved.
        case connection
        /// The server stopped answering for longer than the timeout.
        case timeout
        /// 401/403: gated or private repository, or a missing/invalid token.
        case unauthorized
        case repositoryNotFound
        case revisionNotFound
        case fileNotFound
        /// Another HTTP status the client cannot use (5xx, an unexpected redirect, …).
        case server
        /// The body ended before its announced size; the partial file is kept for a resume.
        case truncated
        /// The bytes do not hash to the sha256 the Hub names them by.
        case hashMismatch
        /// Not enough free space for the file, or a write failed for lack of it.
        case diskFull
        case io
        /// A response or cache entry that does not have the documented shape.
        case malformed
        /// `HF_HUB_OFFLINE` is set and the cache lacks what was asked for.
        case offline
        case invalidArgument
    }

    public var kind: Kind
    public var message: String
    /// The URL (or cache path) the error is about.
    public var location: String?

    public init(_ kind: Kind, _ message: String, location: String? = nil) {
        self.kind = kind
        self.message = message
        self.location = location
    }

    public var description: String {
        guard let location, !message.contains(location) else { return message }
        return "\(message) (\(location))"
    }
}
