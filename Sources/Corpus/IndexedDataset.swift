import Formats
import Foundation

/// Element types a Megatron `.idx` file can declare (the u8 "dtype code").
public enum IndexedDType: UInt8, Sendable, CaseIterable {
    case uint8 = 1, int8 = 2, int16 = 3, int32 = 4, int64 = 5, float32 = 6, float64 = 7, uint16 = 8

    /// Bytes per element in the `.bin` file.
    public var byteWidth: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16, .uint16: return 2
        case .int32, .float32: return 4
        case .int64, .float64: return 8
        }
    }
}

/// A Megatron `MMapIndexedDataset`: `PREFIX.idx` (index) + `PREFIX.bin` (raw tokens), the format of
/// Pythia's pre-tokenized, pre-shuffled Pile.
///
/// Both files are memory-mapped, so opening is O(rows) (validation only) and a row is read straight
/// out of the page cache. The whole index is validated up front — exact `.idx` size, every
/// (pointer, size) inside `.bin` — so `row(_:)` can never read out of bounds.
///
/// `.idx` layout (little-endian, no padding): magic `MMIDIDX\0\0`, u64 version (1), u8 dtype code,
/// u64 count, u64 doc_count, i32 sizes[count], i64 pointers[count] (byte offsets into `.bin`),
/// i64 doc_idx[doc_count].
public struct IndexedDataset: Sendable {
    public static let magic: [UInt8] = Array("MMIDIDX".utf8) + [0, 0]
    static let headerSize = 9 + 8 + 1 + 8 + 8

    public let indexPath: String
    public let dataPath: String
    public let dtype: IndexedDType
    /// Number of rows (sequences).
    public let count: Int
    /// Number of entries in `doc_idx` (Megatron writes documents + 1 boundaries).
    public let documentIndexCount: Int

    private let index: MappedFile
    private let data: MappedFile
    private var sizesOffset: Int { Self.headerSize }
    private var pointersOffset: Int { Self.headerSize + 4 * count }
    private var documentIndexOffset: Int { Self.headerSize + 12 * count }

    /// Opens `prefix + ".idx"` and `prefix + ".bin"` (a trailing `.idx`/`.bin` on `prefix` is tolerated).
    public init(prefix: String) throws {
        var stem = prefix
        if stem.hasSuffix(".idx") || stem.hasSuffix(".bin") { stem.removeLast(4) }
        let indexPath = stem + ".idx"
        let dataPath = stem + ".bin"
        let index = try Self.map(indexPath)
        let data = try Self.map(dataPath)

        guard index.count >= Self.headerSize else {
            if index.count >= 9, !Self.hasMagic(index) {
                throw CorpusError(.badMagic, path: indexPath, "not a Megatron index: bad magic (expected MMIDIDX\\0\\0)")
            }
            throw CorpusError(.sizeMismatch, path: indexPath,
                              "index is truncated: \(index.count) bytes, shorter than the \(Self.headerSize)-byte header")
        }
        guard Self.hasMagic(index) else {
            throw CorpusError(.badMagic, path: indexPath, "not a Megatron index: bad magic (expected MMIDIDX\\0\\0)")
        }
        let version = UInt64(littleEndian: index.load(fromByteOffset: 9, as: UInt64.self))
        guard version == 1 else {
            throw CorpusError(.unsupportedVersion, path: indexPath, "unsupported index version \(version) (only 1 is known)")
        }
        let code = index.load(fromByteOffset: 17, as: UInt8.self)
        guard let dtype = IndexedDType(rawValue: code) else {
            throw CorpusError(.unknownDType, path: indexPath, "unknown dtype code \(code) (expected 1...8)")
        }
        let rawCount = UInt64(littleEndian: index.load(fromByteOffset: 18, as: UInt64.self))
        let rawDocCount = UInt64(littleEndian: index.load(fromByteOffset: 26, as: UInt64.self))
        // Compare in 128-bit-safe arithmetic so absurd header values can't overflow.
        let bodySize = UInt64(index.count - Self.headerSize)
        let maxEntries = bodySize / 8 + 1
        let expected = (rawCount < maxEntries && rawDocCount < maxEntries)
            ? UInt64(Self.headerSize) + 12 * rawCount + 8 * rawDocCount : UInt64.max
        guard expected == UInt64(index.count) else {
            let need = expected == UInt64.max ? "far more" : "\(expected)"
            throw CorpusError(.sizeMismatch, path: indexPath,
                              "index size \(index.count) bytes does not match its header (count \(rawCount), doc_count \(rawDocCount) need \(need) bytes)")
        }

        self.indexPath = indexPath
        self.dataPath = dataPath
        self.dtype = dtype
        self.count = Int(rawCount)
        self.documentIndexCount = Int(rawDocCount)
        self.index = index
        self.data = data
        try validate()
    }

    /// The Megatron prefix a path names: `PREFIX.bin`, `PREFIX.idx`, or `PREFIX` itself when
    /// `PREFIX.idx` exists and the name is not a text corpus's (`.jsonl`, `.jsonl.zst`, `.txt`).
    /// Commands that accept either kind of corpus use this one rule to tell them apart.
    public static func prefix(forPath path: String) -> String? {
        for ext in [".bin", ".idx"] where path.hasSuffix(ext) { return String(path.dropLast(ext.count)) }
        if PileReader.Format.infer(fromPath: path) == nil, FileManager.default.fileExists(atPath: path + ".idx") { return path }
        return nil
    }

    private static func hasMagic(_ file: MappedFile) -> Bool {
        guard file.count >= 9 else { return false }
        return (0..<9).allSatisfy { file.load(fromByteOffset: $0, as: UInt8.self) == magic[$0] }
    }

    /// Checks every row lies inside `.bin` and `doc_idx` is a non-decreasing list of row boundaries.
    private func validate() throws {
        let width = dtype.byteWidth
        let binSize = data.count
        for i in 0..<count {
            let size = Int(Int32(littleEndian: index.load(fromByteOffset: sizesOffset + 4 * i, as: Int32.self)))
            let pointer = Int(Int64(littleEndian: index.load(fromByteOffset: pointersOffset + 8 * i, as: Int64.self)))
            guard size >= 0 else {
                throw CorpusError(.inconsistentIndex, path: indexPath, "row \(i) has negative size \(size)")
            }
            guard pointer >= 0, pointer <= binSize, size <= (binSize - pointer) / width else {
                throw CorpusError(.inconsistentIndex, path: indexPath,
                                  "row \(i) (byte offset \(pointer), \(size) tokens of \(width) bytes) extends past the end of \(dataPath) (\(binSize) bytes)")
            }
            guard pointer % width == 0 else {
                throw CorpusError(.inconsistentIndex, path: indexPath,
                                  "row \(i) byte offset \(pointer) is not a multiple of the \(width)-byte token size")
            }
        }
        var previous: Int64 = 0
        for d in 0..<documentIndexCount {
            let boundary = Int64(littleEndian: index.load(fromByteOffset: documentIndexOffset + 8 * d, as: Int64.self))
            guard boundary >= previous, boundary <= Int64(count) else {
                throw CorpusError(.inconsistentIndex, path: indexPath,
                                  "doc_idx[\(d)] = \(boundary) is not a non-decreasing row boundary in 0...\(count)")
            }
            previous = boundary
        }
    }

    /// Number of tokens in row `i` (no bounds check beyond the precondition).
    public func rowLength(_ i: Int) throws -> Int {
        try checkRow(i)
        return Int(Int32(littleEndian: index.load(fromByteOffset: sizesOffset + 4 * i, as: Int32.self)))
    }

    /// Byte offset of row `i` in the `.bin` file.
    public func rowByteOffset(_ i: Int) throws -> Int {
        try checkRow(i)
        return Int(Int64(littleEndian: index.load(fromByteOffset: pointersOffset + 8 * i, as: Int64.self)))
    }

    /// `doc_idx[d]`: the first row of document `d` (Megatron's document boundaries).
    public func documentBoundary(_ d: Int) throws -> Int {
        guard d >= 0, d < documentIndexCount else {
            throw CorpusError(.outOfRange, path: indexPath, "doc_idx entry \(d) out of range 0..<\(documentIndexCount)")
        }
        return Int(Int64(littleEndian: index.load(fromByteOffset: documentIndexOffset + 8 * d, as: Int64.self)))
    }

    private func checkRow(_ i: Int) throws {
        guard i >= 0, i < count else {
            throw CorpusError(.outOfRange, path: indexPath, "row \(i) out of range 0..<\(count)")
        }
    }

    /// A no-copy view of row `i`: tokens are read from the mapping on access.
    ///
    /// - Throws: `.outOfRange` for a bad row, `.invalidToken` if a stored value (possible only for
    ///   the wide or floating-point dtypes, which are checked here in full) is not an integer in
    ///   Int32 range, so the view never hands out a truncated or rounded id.
    public func tokens(_ i: Int) throws -> TokenRow {
        let length = try rowLength(i)
        let offset = try rowByteOffset(i)
        let view = TokenRow(file: data, byteOffset: offset, count: length, dtype: dtype)
        switch dtype {
        case .uint16, .uint8, .int8, .int16, .int32:
            break
        case .int64, .float32, .float64:
            for k in 0..<view.count where view.exactValue(at: k) == nil {
                throw CorpusError(.invalidToken, path: dataPath,
                                  "row \(i) token \(k) (\(view.rawDescription(at: k))) is not an Int32 token id")
            }
        }
        return view
    }

    /// Row `i` as token ids (see `tokens(_:)` for what it throws).
    public func row(_ i: Int) throws -> [Int32] {
        Array(try tokens(i))
    }

    /// Calls `body` with the raw little-endian bytes of row `i` inside the mapping (no copy).
    /// The pointer is valid only during the call.
    public func withRowBytes<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let view = try tokens(i)
        return try view.withUnsafeBytes(body)
    }
}

/// A row of an `IndexedDataset` viewed in place: a random-access collection of token ids decoded on
/// the fly from the mapped `.bin` file.
///
/// Keeps the mapping alive, so it may outlive the `IndexedDataset` it came from. Every value is an
/// exact Int32 id: rows of the wide and floating-point dtypes are checked when the view is made.
public struct TokenRow: RandomAccessCollection, Sendable {
    private let file: MappedFile
    private let byteOffset: Int
    public let count: Int
    public let dtype: IndexedDType

    init(file: MappedFile, byteOffset: Int, count: Int, dtype: IndexedDType) {
        self.file = file
        self.byteOffset = byteOffset
        self.count = count
        self.dtype = dtype
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    /// Calls `body` with the row's little-endian bytes inside the mapping, valid only during the call.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try file.withUnsafeBytes(offset: byteOffset, length: count * dtype.byteWidth, body)
    }

    public subscript(position: Int) -> Int32 {
        precondition(position >= 0 && position < count, "token index \(position) out of range 0..<\(count)")
        let at = byteOffset + position * dtype.byteWidth
        switch dtype {
        case .uint16: return Int32(UInt16(littleEndian: file.load(fromByteOffset: at, as: UInt16.self)))
        case .uint8: return Int32(file.load(fromByteOffset: at, as: UInt8.self))
        case .int8: return Int32(file.load(fromByteOffset: at, as: Int8.self))
        case .int16: return Int32(Int16(littleEndian: file.load(fromByteOffset: at, as: Int16.self)))
        case .int32: return Int32(littleEndian: file.load(fromByteOffset: at, as: Int32.self))
        case .int64, .float32, .float64:
            // `IndexedDataset.tokens(_:)` checked every value of a wide row before handing it out.
            return exactValue(at: position)!
        }
    }

    /// The element as an Int32 if it is exactly representable, else nil.
    func exactValue(at position: Int) -> Int32? {
        let at = byteOffset + position * dtype.byteWidth
        switch dtype {
        case .int64: return Int32(exactly: Int64(littleEndian: file.load(fromByteOffset: at, as: Int64.self)))
        case .float32: return Int32(exactly: Float(bitPattern: UInt32(littleEndian: file.load(fromByteOffset: at, as: UInt32.self))))
        case .float64: return Int32(exactly: Double(bitPattern: UInt64(littleEndian: file.load(fromByteOffset: at, as: UInt64.self))))
        case .uint16, .uint8, .int8, .int16, .int32: return self[position]
        }
    }

    func rawDescription(at position: Int) -> String {
        let at = byteOffset + position * dtype.byteWidth
        switch dtype {
        case .int64: return "\(Int64(littleEndian: file.load(fromByteOffset: at, as: Int64.self)))"
        case .float32: return "\(Float(bitPattern: UInt32(littleEndian: file.load(fromByteOffset: at, as: UInt32.self))))"
        case .float64: return "\(Double(bitPattern: UInt64(littleEndian: file.load(fromByteOffset: at, as: UInt64.self))))"
        default: return "\(self[position])"
        }
    }
}

/// Which rows a Pythia training step consumes.
///
/// Pythia (GPT-NeoX with the pre-shuffled Pile) reads the dataset sequentially: the 0-based training
/// step `s` with batch size `B` consumes samples `s*B ..< (s+1)*B`. When samples run past the end of
/// the dataset they wrap around, i.e. sample `k` is row `k mod count` (the real Pythia runs never
/// wrap; the small suite in `shared/` does).
///
/// Checkpoint naming is one ahead: the checkpoint `stepN` is the state after N updates, i.e. after
/// steps `0 ..< N`, so the last batch it learned from is step `N - 1`. For the mini suite
/// (B = 4, 4391 rows), checkpoint `step2000`'s last batch is step 1999: samples 7996..7999, rows
/// 3605..3608. `samples(beforeCheckpoint:)` gives that range directly.
public enum TrainingBatch {
    /// Samples (not yet wrapped) consumed at `step`: `step*batchSize ..< (step+1)*batchSize`.
    public static func samples(step: Int, batchSize: Int) -> Range<Int> {
        precondition(step >= 0 && batchSize > 0, "step must be >= 0 and batchSize > 0")
        return step * batchSize ..< (step + 1) * batchSize
    }

    /// Samples of the last batch before checkpoint `stepN` (= step `N - 1`; empty for `step0`).
    public static func samples(beforeCheckpoint checkpointStep: Int, batchSize: Int) -> Range<Int> {
        precondition(checkpointStep >= 0, "checkpoint step must be >= 0")
        if checkpointStep == 0 { return 0..<0 }
        return samples(step: checkpointStep - 1, batchSize: batchSize)
    }

    /// Dataset rows consumed at `step`, in batch order, wrapped modulo `rowCount`.
    public static func rows(step: Int, batchSize: Int, rowCount: Int) -> [Int] {
        precondition(rowCount > 0, "dataset has no rows")
        return samples(step: step, batchSize: batchSize).map { $0 % rowCount }
    }
}

extension IndexedDataset {
    /// Rows consumed at training step `step`, wrapped modulo `count` (see `TrainingBatch`).
    public func rowIndices(step: Int, batchSize: Int) -> [Int] {
        TrainingBatch.rows(step: step, batchSize: batchSize, rowCount: count)
    }

    /// The token rows of training step `step`, in batch order.
    public func batch(step: Int, batchSize: Int) throws -> [[Int32]] {
        try rowIndices(step: step, batchSize: batchSize).map { try row($0) }
    }
}

/// The rows `neoxprobe batch` prints, kept here so the selection rules are unit-tested.
public enum RowSelection {
    /// Parses "a:b", "a:", ":b" or "a" (see `RowSpec`) into a non-empty range inside `0..<upperLimit`.
    ///
    /// - Throws: `CorpusError(.outOfRange)` (its `path` names the row range) for syntax errors
    ///   and ranges that are empty or leave `0..<upperLimit`.
    public static func parseRange(_ text: String, upperLimit: Int) throws -> Range<Int> {
        try RowSpec(parsing: text).resolve(upperLimit: upperLimit)
    }

    /// Dataset rows to print, in order.
    /// - With `step`: the step's batch (wrapped modulo `rowCount`), narrowed to batch positions
    ///   `rows` (a range spec, parsed against `batchSize`) when given.
    /// - Without `step`: absolute rows `rows` (parsed against `rowCount`); all rows if nil.
    public static func rows(step: Int?, batchSize: Int, rows: String?, rowCount: Int) throws -> [Int] {
        if let step {
            let batch = TrainingBatch.rows(step: step, batchSize: batchSize, rowCount: rowCount)
            guard let rows else { return batch }
            return Array(batch[try parseRange(rows, upperLimit: batchSize)])
        }
        return Array(try parseRange(rows ?? ":", upperLimit: rowCount))
    }
}

extension IndexedDataset {
    /// Maps a dataset file, reporting failures as this module's error.
    static func map(_ path: String) throws -> MappedFile {
        do { return try MappedFile(URL(fileURLWithPath: path)) } catch let error as FormatError {
            throw CorpusError(.io, path: path, error.message)
        }
    }
}

/// A row range as people write it: `a:b`, `a:`, `:b` or `a` — 0-based indices `a..<b` (b
/// exclusive), either end open until the data says how many rows there are; `a` alone is the one
/// row `a`. The one parser of this syntax, for the command line and the libraries alike.
public struct RowSpec: Sendable, Equatable, CustomStringConvertible {
    /// The first index as given (nil: `:b`, from 0).
    public let lower: Int?
    /// One past the last index (nil: `a:`, to the end).
    public let upper: Int?
    /// Written as a single index `a`.
    public let isSingle: Bool

    /// - Throws: `CorpusError(.outOfRange)` for text that is not a range, negative indices, an
    ///   empty range (`5:5`, `6:2`) or a single row with no successor (`Int.max`).
    public init(parsing text: String) throws {
        func fail(_ why: String) -> CorpusError { CorpusError(.outOfRange, path: "row range '\(text)'", why) }
        let trimmed = text.filter { $0 != " " }
        guard !trimmed.isEmpty else { throw fail("is empty (give a:b, a:, :b or a)") }
        let parts = trimmed.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        func index(_ part: Substring) throws -> Int? {
            if part.isEmpty { return nil }
            guard let value = Int(part) else { throw fail("'\(part)' is not a row index (a whole number from 0 to \(Int.max))") }
            guard value >= 0 else { throw fail("row indices start at 0, got \(value)") }
            return value
        }
        let first = try index(parts[0])
        if parts.count == 1 {
            guard let single = first, single < Int.max else { throw fail("row \(trimmed) is past any dataset") }
            lower = single
            upper = single + 1
            isSingle = true
        } else {
            lower = first
            upper = try index(parts[1])
            isSingle = false
            if let upper, upper <= (lower ?? 0) { throw fail("selects nothing (the end is exclusive)") }
        }
    }

    /// The rows inside `0..<upperLimit`; an open end stops at `upperLimit`.
    public func resolve(upperLimit: Int) throws -> Range<Int> {
        let start = lower ?? 0, end = upper ?? upperLimit
        guard start < end, end <= upperLimit else {
            throw CorpusError(.outOfRange, path: "row range '\(description)'", "must select a non-empty range within 0..<\(upperLimit)")
        }
        return start..<end
    }

    /// The canonical text (`a:b`, `a:`, `:b`, `a`), as results record it.
    public var description: String {
        if isSingle, let lower { return "\(lower)" }
        return (lower.map(String.init) ?? "") + ":" + (upper.map(String.init) ?? "")
    }
}
