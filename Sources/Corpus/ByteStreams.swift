import CZstd
import Formats
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A sequential source of bytes, read in chunks.
///
/// Pile shards are up to a gigabyte compressed, so nothing in this module ever holds a whole
/// file: sources hand out one fixed-size chunk at a time and `LineReader` splits lines on top.
/// Sources are classes because they own OS / libzstd resources that must be released exactly once.
protocol ByteChunkSource: AnyObject {
    /// The file the bytes come from (for error messages).
    var path: String { get }
    /// Fills the start of `buffer` and returns how many bytes were written; 0 means end of stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// An open file descriptor read front to back.
final class FileByteSource: ByteChunkSource {
    let path: String
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw CorpusError(.io, path: path, "cannot open file: \(String(cString: strerror(errno)))")
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            let n = systemRead(descriptor, base, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw CorpusError(.io, path: path, "read failed: \(String(cString: strerror(errno)))")
        }
    }
}

/// Decompresses a zstd stream (one or more frames) incrementally with `ZSTD_decompressStream`.
///
/// Compressed input is pulled from an underlying source in `ZSTD_DStreamInSize()` chunks, so memory
/// stays bounded by libzstd's window plus two buffers regardless of the file size. The stream must
/// end on a frame boundary; ending mid-frame is reported as truncation rather than silently
/// yielding a short document list.
final class ZstdByteSource: ByteChunkSource {
    private let input: ByteChunkSource
    private let stream: OpaquePointer
    private let inputBuffer: UnsafeMutableRawBufferPointer
    private var inputStart = 0
    private var inputEnd = 0
    private var inputExhausted = false
    private var totalCompressedBytes = 0
    /// True while libzstd is inside a frame (its last return value was non-zero).
    private var frameInProgress = false

    var path: String { input.path }

    init(input: ByteChunkSource, inputChunkSize: Int? = nil) throws {
        guard let dstream = ZSTD_createDStream() else {
            throw CorpusError(.io, path: input.path, "cannot allocate a zstd decompression stream")
        }
        let initResult = ZSTD_initDStream(dstream)
        if ZSTD_isError(initResult) != 0 {
            ZSTD_freeDStream(dstream)
            throw CorpusError(.io, path: input.path,
                              "cannot initialise zstd stream: \(String(cString: ZSTD_getErrorName(initResult)))")
        }
        self.input = input
        self.stream = dstream
        let size = max(1, inputChunkSize ?? Int(ZSTD_DStreamInSize()))
        self.inputBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    }

    deinit {
        ZSTD_freeDStream(stream)
        inputBuffer.deallocate()
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let outBase = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            if inputStart == inputEnd && !inputExhausted {
                let n = try input.read(into: inputBuffer)
                if n == 0 {
                    inputExhausted = true
                } else {
                    inputStart = 0
                    inputEnd = n
                    totalCompressedBytes += n
                }
            }
            let noInputLeft = inputStart == inputEnd && inputExhausted
            if noInputLeft {
                if totalCompressedBytes == 0 {
                    throw CorpusError(.emptyFile, path: path, "file is empty: a zstd file needs at least one frame")
                }
                if !frameInProgress { return 0 }
                // Fall through with empty input: libzstd may still hold decoded bytes to flush.
            }
            var inBuf = ZSTD_inBuffer(src: inputBuffer.baseAddress! + inputStart,
                                      size: inputEnd - inputStart, pos: 0)
            var outBuf = ZSTD_outBuffer(dst: outBase, size: buffer.count, pos: 0)
            let result = ZSTD_decompressStream(stream, &outBuf, &inBuf)
            if ZSTD_isError(result) != 0 {
                throw CorpusError(.corruptCompressedData, path: path,
                                  "corrupt zstd data: \(String(cString: ZSTD_getErrorName(result)))")
            }
            inputStart += inBuf.pos
            frameInProgress = result != 0
            if outBuf.pos > 0 { return outBuf.pos }
            if noInputLeft && frameInProgress {
                throw CorpusError(.truncatedCompressedData, path: path,
                                  "zstd stream is truncated: the file ends in the middle of a frame")
            }
        }
    }
}

/// Splits a byte source into lines terminated by `\n` (the final line may lack one).
///
/// Lines are returned without the `\n`; a trailing `\r` is left in place because JSON treats it as
/// whitespace. Only the current partial line is kept between chunks, so a line can be any length
/// but memory is bounded by the longest line plus one chunk.
struct LineReader {
    private let source: ByteChunkSource
    private let chunkSize: Int
    private var pending: [UInt8] = []
    private var start = 0
    private var scanFrom = 0
    private var atEnd = false
    /// 1-based number of the last line returned.
    private(set) var lineNumber = 0

    var path: String { source.path }

    init(source: ByteChunkSource, chunkSize: Int = 1 << 17) {
        self.source = source
        self.chunkSize = max(1, chunkSize)
    }

    /// The next line's bytes, or nil at end of input.
    mutating func nextLine() throws -> ArraySlice<UInt8>? {
        while true {
            if let newline = findNewline() {
                let line = pending[start..<newline]
                start = newline + 1
                scanFrom = start
                lineNumber += 1
                return line
            }
            if atEnd {
                guard start < pending.count else { return nil }
                let line = pending[start..<pending.count]
                start = pending.count
                scanFrom = start
                lineNumber += 1
                return line
            }
            try refill()
        }
    }

    private func findNewline() -> Int? {
        guard scanFrom < pending.count else { return nil }
        return pending.withUnsafeBufferPointer { buffer -> Int? in
            let base = UnsafeRawPointer(buffer.baseAddress!)
            guard let hit = memchr(base + scanFrom, 0x0A, buffer.count - scanFrom) else { return nil }
            return UnsafeRawPointer(hit) - base
        }
    }

    private mutating func refill() throws {
        // Drop consumed bytes so the buffer only ever holds the current partial line.
        if start > 0 {
            pending.removeFirst(start)
            start = 0
        }
        scanFrom = pending.count
        let oldCount = pending.count
        pending.append(contentsOf: repeatElement(0, count: chunkSize))
        let n = try pending.withUnsafeMutableBytes { bytes in
            try source.read(into: UnsafeMutableRawBufferPointer(rebasing: bytes[oldCount...]))
        }
        pending.removeLast(chunkSize - n)
        if n == 0 { atEnd = true }
    }
}

/// Decodes UTF-8 strictly, throwing a `CorpusError` that points at the first bad byte.
func decodeUTF8<C: Collection>(_ bytes: C, path: String, line: Int?, what: String) throws -> String
where C.Element == UInt8 {
    if let text = String(validating: bytes, as: UTF8.self) { return text }
    let offset = UTF8Validation.firstInvalidOffset(Array(bytes)) ?? 0
    throw CorpusError(.invalidUTF8, path: path, line: line,
                      "\(what) is not valid UTF-8 (first invalid byte at offset \(offset))")
}

/// `read(2)`, named so it does not collide with `read(into:)`.
private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.read(descriptor, buffer, count)
    #else
    return Darwin.read(descriptor, buffer, count)
    #endif
}
