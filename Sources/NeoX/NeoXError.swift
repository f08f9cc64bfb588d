import Foundation

/// Every failure the engine reports names the file (or model) and what is wrong with it,
/// so a researcher never has to guess which of 154 checkpoints is broken.
public struct NeoXError: Error, CustomStringConvertible, Sendable, Equatable {
    public var path: String?
    public var message: String

    public init(_ message: String, path: String? = nil) {
        self.message = message
        self.path = path
    }

    public init(_ message: String, file: URL) {
        self.init(message, path: file.path)
    }

    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }
}
