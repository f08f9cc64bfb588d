import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes whole files so that a reader (or a crash) never sees a half-written one.
///
/// A sweep runs for hours and rewrites `metrics.csv` after every checkpoint; if the process is
/// killed mid-write the previous complete file must survive. So every write goes to a temporary
/// file in the *same directory* (rename is only atomic within one file system), is flushed to disk
/// with `fsync`, and is then renamed over the destination. The directory is fsynced afterwards so
/// the rename itself is durable.
public enum AtomicFile {
    /// Replaces (or creates) `url` with `data`, atomically. The file gets mode 0644.
    public static func write(_ data: Data, to url: URL) throws {
        let directory = url.deletingLastPathComponent()
        let name = url.lastPathComponent
        let temporary = directory.appendingPathComponent(
            ".\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else { throw ProbeError.io("cannot create temporary file", url: temporary) }
        var succeeded = false
        defer {
            if !succeeded { unlink(temporary.path) }
        }
        do {
            defer { close(descriptor) }
            try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
                var written = 0
                while written < bytes.count {
                    let result = systemWrite(descriptor, bytes.baseAddress! + written, bytes.count - written)
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw ProbeError.io("write failed", url: temporary)
                    }
                    written += result
                }
            }
            guard fsync(descriptor) == 0 else { throw ProbeError.io("fsync failed", url: temporary) }
        }
        guard rename(temporary.path, url.path) == 0 else { throw ProbeError.io("rename failed", url: url) }
        succeeded = true
        // Make the rename durable; failure here does not un-write the file, so it is not an error.
        let directoryDescriptor = open(directory.path, O_RDONLY)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// Convenience for text files (UTF-8).
    public static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }
}

/// Errors raised by the probes, with enough context to act on.
public struct ProbeError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }

    static func io(_ message: String, url: URL) -> ProbeError {
        let reason = String(cString: strerror(errno))
        return ProbeError("\(url.path): \(message): \(reason)")
    }
}

/// `write(2)`, named so it does not collide with `AtomicFile.write`.
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(descriptor, buffer, count)
    #else
    return Darwin.write(descriptor, buffer, count)
    #endif
}
