import Foundation

/// A site's reference-checkpoint activations parked on disk as raw little-endian fp32 rows.
///
/// CKA compares every checkpoint with one reference checkpoint on the same tokens, but the engine
/// produces one checkpoint's activations at a time. Holding the reference activations of every
/// site in memory costs tokens × d × 4 bytes per site (≈ 900 MB for pythia-160m, 8k tokens, 36
/// sites), so the sweep can spool them here once and stream them back, in the same token order,
/// into `CKAAccumulator.add(x:y:rows:)` while each later checkpoint runs.
/// Not thread-safe: one spool per site, used from one task at a time.
public final class ActivationSpool {
    public let url: URL
    public let dimension: Int
    public private(set) var rowCount: Int = 0
    private let handle: FileHandle

    /// Creates (or truncates) the spool file.
    public init(url: URL, dimension: Int) throws {
        precondition(dimension > 0)
        self.url = url
        self.dimension = dimension
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw ProbeError("\(url.path): cannot create activation spool")
        }
        handle = try FileHandle(forUpdating: url)
    }

    deinit { try? handle.close() }

    /// Appends `rowCount` rows of `dimension` values.
    public func append(rows: UnsafeBufferPointer<Float>, rowCount: Int) throws {
        precondition(rows.count >= rowCount * dimension, "buffer holds fewer than rowCount × dimension values")
        let count = rowCount * dimension
        var data = Data(count: count * 4)
        data.withUnsafeMutableBytes { raw in
            for i in 0..<count { raw.storeBytes(of: rows[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        }
        try handle.seekToEnd()
        try handle.write(contentsOf: data)
        self.rowCount += rowCount
    }

    public func append(rows: [Float], rowCount: Int) throws {
        try rows.withUnsafeBufferPointer { try append(rows: $0, rowCount: rowCount) }
    }

    /// Rows `range` (row-major, `range.count × dimension` values).
    public func read(rows range: Range<Int>) throws -> [Float] {
        precondition(range.lowerBound >= 0 && range.upperBound <= rowCount, "rows \(range) outside 0..<\(rowCount)")
        try handle.seek(toOffset: UInt64(range.lowerBound * dimension * 4))
        let byteCount = range.count * dimension * 4
        guard let data = try handle.read(upToCount: byteCount), data.count == byteCount else {
            throw ProbeError("\(url.path): activation spool is shorter than expected")
        }
        return data.withUnsafeBytes { raw in
            (0..<(range.count * dimension)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
            }
        }
    }

    /// Deletes the file (the object must not be used afterwards).
    public func remove() throws {
        try handle.close()
        try FileManager.default.removeItem(at: url)
    }
}
