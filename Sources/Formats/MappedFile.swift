import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file, unmapped when the last reference goes away.
/// Checkpoints are read through maps so that fp16 weights are widened straight from the page
/// cache into fp32 buffers, with no intermediate copy; Megatron `.bin`/`.idx` files so that a row
/// is read out of the page cache on demand.
///
/// Immutable after init, hence safe to share across threads. The bytes are only reachable inside
/// `withUnsafeBytes`, so no pointer can outlive the map.
public final class MappedFile: @unchecked Sendable {
    public let url: URL
    public let count: Int
    /// nil for an empty file (mmap rejects zero-length mappings).
    private let base: UnsafeRawPointer?

    public init(_ url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw FormatError(.io, "cannot open: \(String(cString: strerror(errno)))", file: url)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw FormatError(.io, "cannot stat: \(String(cString: strerror(errno)))", file: url)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw FormatError(.io, "is a directory, expected a file", file: url)
        }
        count = Int(info.st_size)
        if count == 0 {
            base = nil
            return
        }
        let mapped = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw FormatError(.io, "cannot memory-map: \(String(cString: strerror(errno)))", file: url)
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// Calls `body` with the bytes `[offset, offset + length)`; the caller has checked the range
    /// against `count` (a range outside the file is a programming error and traps).
    public func withUnsafeBytes<R>(offset: Int = 0, length: Int? = nil,
                                   _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let length = length ?? (count - offset)
        precondition(offset >= 0 && length >= 0 && offset <= count - length, "MappedFile: range outside \(url.path)")
        guard let base else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base + offset, count: length))
    }

    /// Drops this process's mapping of the pages holding `[offset, offset + length)` (whole pages
    /// inside the range; the file's pages stay in the page cache, and a later read maps them back
    /// in). A weight streamed block by block or a tensor hashed once would otherwise stay counted in
    /// the process's resident memory until the map is closed: a 14 GB checkpoint, all of it.
    public func releasePages(offset: Int, length: Int) {
        guard let base, length > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page, end = min(count, offset + length) / page * page
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, Int32(MADV_DONTNEED))
    }

    /// Asks the kernel to start reading `[offset, offset + length)` from disk (the next block's weights).
    public func prefetch(offset: Int, length: Int) {
        guard let base, length > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page, end = min(count, offset + length)
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, Int32(MADV_WILLNEED))
    }

    /// Module-internal view for readers that parse a whole file while holding `self`
    /// (safetensors headers, zip directories); never handed out of the module.
    var allBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: base == nil ? 0 : count) }

    func bytes(offset: Int, length: Int) -> UnsafeRawBufferPointer {
        precondition(offset >= 0 && length >= 0 && offset <= count - length)
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + offset, count: length)
    }

    /// The value of type `T` stored (possibly unaligned) at `offset`; the caller has checked the range.
    @inline(__always)
    public func load<T>(fromByteOffset offset: Int, as type: T.Type) -> T {
        precondition(offset >= 0 && offset <= count - MemoryLayout<T>.size, "MappedFile: read outside \(url.path)")
        return base!.loadUnaligned(fromByteOffset: offset, as: T.self)
    }
}
