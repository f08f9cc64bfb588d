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

    /// Elements that are NaN or ±inf, as stored.
    public func nonFiniteCount() -> Int {
        withUnsafeBytes { bytes in bytes.baseAddress.map { dtype.nonFiniteCount($0, count: elementCount) } ?? 0 }
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
