import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file being written, front to back: the one place the project calls `write(2)` and `fsync(2)`.
/// The descriptor is closed exactly once, by `close()` or when the value goes away, so a failure
/// part-way through a batch of files can never close a descriptor number another thread reuses.
public final class OutputFile {
    public let url: URL
    private var descriptor: Int32

    /// Creates `url` (mode 0644). `exclusive` refuses an existing file; otherwise it is truncated.
    public init(creating url: URL, exclusive: Bool = false) throws {
        self.url = url
        let flags = O_WRONLY | O_CREAT | (exclusive ? O_EXCL : O_TRUNC)
        descriptor = open(url.path, flags, 0o644)
        guard descriptor >= 0 else {
            throw FormatError(.io, "cannot create: \(String(cString: strerror(errno)))", file: url)
        }
    }

    deinit { close() }

    /// Appends `bytes`, retrying short writes and interrupted calls.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else { return }
        guard descriptor >= 0 else { throw FormatError(.io, "write after close", file: url) }
        var written = 0
        while written < bytes.count {
            let result = systemWrite(descriptor, base + written, bytes.count - written)
            if result < 0 {
                if errno == EINTR { continue }
                throw FormatError(.io, "write failed: \(String(cString: strerror(errno)))", file: url)
            }
            written += result
        }
    }

    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// Flushes the file's data to disk (`fsync`).
    public func synchronize() throws {
        guard descriptor >= 0, fsync(descriptor) == 0 else {
            throw FormatError(.io, "fsync failed: \(String(cString: strerror(errno)))", file: url)
        }
    }

    /// Closes the descriptor; later calls do nothing.
    public func close() {
        guard descriptor >= 0 else { return }
        _ = systemClose(descriptor)
        descriptor = -1
    }
}

/// `write(2)` and `close(2)`, named so they do not collide with the methods above.
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(descriptor, buffer, count)
    #else
    return Darwin.write(descriptor, buffer, count)
    #endif
}

private func systemClose(_ descriptor: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(descriptor)
    #else
    return Darwin.close(descriptor)
    #endif
}
