import Foundation

/// One named tensor inside a checkpoint file: where its bytes live and how to read them.
/// The entry keeps its file's map alive, so it can outlive the reader that found it.
public struct TensorEntry: Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var file: MappedFile
    /// Byte offset of the first element within `file`.
    public var offset: Int

    public init(name: String, dtype: DType, shape: [Int], file: MappedFile, offset: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.file = file
        self.offset = offset
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { elementCount * dtype.byteSize }

    /// Calls `body` with the raw stored bytes (row-major, contiguous), valid only during the call.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try file.withUnsafeBytes(offset: offset, length: byteCount, body)
    }

    /// Elements that are NaN or ±inf, as stored (the pages read are released afterwards).
    public func nonFiniteCount() -> Int {
        defer { releasePages() }
        return withUnsafeBytes { bytes in bytes.baseAddress.map { dtype.nonFiniteCount($0, count: elementCount) } ?? 0 }
    }

    /// Drops the tensor's pages from this process's resident memory (they stay in the page cache).
    public func releasePages() { file.releasePages(offset: offset, length: byteCount) }

    /// Starts reading the tensor's pages from disk in the background.
    public func prefetch() { file.prefetch(offset: offset, length: byteCount) }

    /// Widens the tensor into `destination` (`elementCount` floats), then releases its pages.
    public func widen(into destination: UnsafeMutablePointer<Float>) {
        let count = elementCount
        guard count > 0 else { return }
        withUnsafeBytes { bytes in dtype.widen(bytes.baseAddress!, count: count, into: destination) }
        releasePages()
    }

    /// The tensor widened to fp32.
    public func float32() throws -> [Float] {
        guard dtype.isFloatingPoint else {
            throw FormatError(.unsupported, "tensor '\(name)' has dtype \(dtype.rawValue), expected a floating-point type", file: file.url)
        }
        let count = elementCount
        return withUnsafeBytes { bytes in
            [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                if count > 0 { dtype.widen(bytes.baseAddress!, count: count, into: buffer.baseAddress!) }
                initialized = count
            }
        }
    }
}
