import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a whole file. Checkpoints are read through maps so that
/// fp16 weights are widened straight from the page cache into their fp32 buffers, with no
/// intermediate copy of the file.
public final class MappedFile: @unchecked Sendable {
    public let url: URL
    public let count: Int
    private let base: UnsafeMutableRawPointer?

    public init(_ url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw NeoXError("cannot open: \(String(cString: strerror(errno)))", file: url)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw NeoXError("cannot stat: \(String(cString: strerror(errno)))", file: url)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw NeoXError("is a directory, expected a file", file: url)
        }
        count = Int(info.st_size)
        if count == 0 {
            base = nil
            return
        }
        let mapped = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw NeoXError("cannot memory-map: \(String(cString: strerror(errno)))", file: url)
        }
        base = mapped
    }

    deinit {
        if let base { munmap(base, count) }
    }

    /// The bytes [offset, offset+length); the caller has checked the range.
    public func bytes(offset: Int, length: Int) -> UnsafeRawBufferPointer {
        precondition(offset >= 0 && length >= 0 && offset + length <= count)
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + offset, count: length)
    }

    public var allBytes: UnsafeRawBufferPointer { bytes(offset: 0, length: count) }
}
