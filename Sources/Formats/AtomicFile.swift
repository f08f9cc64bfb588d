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
/// the rename itself is durable. This is the project's one atomic-write routine: results,
/// safetensors captures and cache markers all go through it.
public enum AtomicFile {
    /// Replaces (or creates) `url` with what `produce` writes into the file it is handed,
    /// atomically: if `produce` throws, `url` is left as it was. The file gets mode 0644.
    public static func write(to url: URL, _ produce: (OutputFile) throws -> Void) throws {
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let file: OutputFile
        do { file = try OutputFile(creating: temporary, exclusive: true) } catch let error as FormatError {
            throw FormatError(.io, "cannot create a temporary file beside it: \(error.message)", file: url)
        }
        var succeeded = false
        defer { if !succeeded { unlink(temporary.path) } }
        do {
            defer { file.close() }
            try produce(file)
            try file.synchronize()
        }
        guard rename(temporary.path, url.path) == 0 else {
            throw FormatError(.io, "cannot move the finished file into place: \(String(cString: strerror(errno)))", file: url)
        }
        succeeded = true
        // Make the rename durable; failure here does not un-write the file, so it is not an error.
        let directoryDescriptor = open(directory.path, O_RDONLY)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// Replaces (or creates) `url` with `data`, atomically.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { try $0.write(data) }
    }

    /// Convenience for text files (UTF-8).
    public static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }
}
