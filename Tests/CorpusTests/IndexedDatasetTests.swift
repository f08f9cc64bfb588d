import Foundation
import XCTest
@testable import Corpus

/// Shape of Tests/Fixtures/corpus/indexed.json (numpy.memmap readings of shared/data/minipile/document.*).
private struct IndexedFixture: Decodable {
    struct RowStats: Decodable {
        var length: Int
        var sum: Int64
        var weightedSum: Int64
        var first: [Int32]
        var last: Int32
        var eodCount: Int
    }
    struct Step: Decodable {
        var step: Int
        var batchSize: Int
        var rows: [Int]
        var stats: [RowStats]
    }
    struct BigStep: Decodable {
        var step: Int
        var batchSize: Int
        var firstRows: [Int]
        var lastRow: Int
        var combinedWeightedSum: String
    }
    var version: Int
    var dtypeCode: UInt8
    var count: Int
    var docCount: Int
    var binBytes: Int
    var distinctRowLengths: [Int]
    var docIndexSum: Int
    var docIndexLast: Int
    var rows: [String: RowStats]
    var step: Step
    var bigStep: BigStep
}

private func weightedSum<C: Collection>(_ row: C) -> Int64 where C.Element == Int32 {
    var total: Int64 = 0
    for (k, token) in row.enumerated() { total += Int64(k + 1) * Int64(token) }
    return total
}

/// Writes a Megatron index/data pair with arbitrary (possibly invalid) contents.
private struct IndexWriter {
    var magic: [UInt8] = IndexedDataset.magic
    var version: UInt64 = 1
    var dtypeCode: UInt8 = 8
    var sizes: [Int32] = []
    var pointers: [Int64] = []
    var documentIndex: [Int64] = []
    var countOverride: UInt64?
    var docCountOverride: UInt64?

    func indexBytes() -> [UInt8] {
        var out = magic
        func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { out += $0 }
        }
        append(version)
        out.append(dtypeCode)
        append(countOverride ?? UInt64(sizes.count))
        append(docCountOverride ?? UInt64(documentIndex.count))
        sizes.forEach(append)
        pointers.forEach(append)
        documentIndex.forEach(append)
        return out
    }

    /// A consistent index for `rows` stored back to back with `width`-byte tokens.
    static func consistent(rowLengths: [Int], width: Int, dtypeCode: UInt8) -> IndexWriter {
        var writer = IndexWriter()
        writer.dtypeCode = dtypeCode
        var offset: Int64 = 0
        for length in rowLengths {
            writer.sizes.append(Int32(length))
            writer.pointers.append(offset)
            offset += Int64(length * width)
        }
        writer.documentIndex = (0...rowLengths.count).map(Int64.init)
        return writer
    }
}

private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}

final class IndexedDatasetTests: XCTestCase {
    private func openShared() throws -> (IndexedDataset, IndexedFixture) {
        let idx = try TestPaths.sharedFile("data/minipile/document.idx")
        let dataset = try IndexedDataset(prefix: String(idx.dropLast(4)))
        return (dataset, try TestPaths.loadFixture("indexed.json", as: IndexedFixture.self))
    }

    private func check(_ row: [Int32], _ stats: IndexedFixture.RowStats, _ label: String,
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(row.count, stats.length, label, file: file, line: line)
        XCTAssertEqual(row.reduce(Int64(0)) { $0 + Int64($1) }, stats.sum, label, file: file, line: line)
        XCTAssertEqual(weightedSum(row), stats.weightedSum, label, file: file, line: line)
        XCTAssertEqual(Array(row.prefix(8)), stats.first, label, file: file, line: line)
        XCTAssertEqual(row.last, stats.last, label, file: file, line: line)
        XCTAssertEqual(row.filter { $0 == 0 }.count, stats.eodCount, label, file: file, line: line)
    }

    func testHeaderMatchesNumpy() throws {
        let (dataset, fixture) = try openShared()
        XCTAssertEqual(dataset.count, fixture.count)
        XCTAssertEqual(dataset.count, 4391)
        XCTAssertEqual(dataset.dtype.rawValue, fixture.dtypeCode)
        XCTAssertEqual(dataset.dtype, .uint16)
        XCTAssertEqual(dataset.documentIndexCount, fixture.docCount)
        let lengths = Set(try (0..<dataset.count).map { try dataset.rowLength($0) })
        XCTAssertEqual(lengths.sorted(), fixture.distinctRowLengths)
        XCTAssertEqual(lengths, [2049])
        XCTAssertEqual(try (0..<dataset.documentIndexCount).reduce(0) { $0 + (try dataset.documentBoundary($1)) },
                       fixture.docIndexSum)
        XCTAssertEqual(try dataset.documentBoundary(dataset.documentIndexCount - 1), fixture.docIndexLast)
        let lastEnd = try dataset.rowByteOffset(dataset.count - 1) + 2 * (try dataset.rowLength(dataset.count - 1))
        XCTAssertEqual(lastEnd, fixture.binBytes)
    }

    func testRowsMatchNumpy() throws {
        let (dataset, fixture) = try openShared()
        XCTAssertFalse(fixture.rows.isEmpty)
        for (key, stats) in fixture.rows {
            let i = try XCTUnwrap(Int(key))
            let row = try dataset.row(i)
            check(row, stats, "row \(i)")
            // The no-copy view and the raw bytes agree with the copy.
            let view = try dataset.tokens(i)
            XCTAssertEqual(Array(view), row)
            XCTAssertEqual(view[view.count - 1], row.last)
            let fromBytes: [Int32] = try dataset.withRowBytes(i) { bytes in
                XCTAssertEqual(bytes.count, 2 * row.count)
                return (0..<row.count).map { Int32(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            }
            XCTAssertEqual(fromBytes, row)
        }
    }

    func testStep2000BatchOfMiniSuite() throws {
        let (dataset, fixture) = try openShared()
        let step = fixture.step
        // The README's "step 2000's batch is rows 7996..7999 mod 4391": checkpoint step2000's last update.
        XCTAssertEqual(step.step, 1999)
        XCTAssertEqual(TrainingBatch.samples(step: step.step, batchSize: step.batchSize), 7996..<8000)
        XCTAssertEqual(TrainingBatch.samples(beforeCheckpoint: 2000, batchSize: 4), 7996..<8000)
        XCTAssertEqual(TrainingBatch.samples(beforeCheckpoint: 0, batchSize: 4), 0..<0)
        XCTAssertEqual(step.rows, [3605, 3606, 3607, 3608])
        XCTAssertEqual(dataset.rowIndices(step: step.step, batchSize: step.batchSize), step.rows)
        let batch = try dataset.batch(step: step.step, batchSize: step.batchSize)
        XCTAssertEqual(batch.count, step.stats.count)
        for (j, row) in batch.enumerated() { check(row, step.stats[j], "step row \(j)") }
    }

    func testWrappingBatchOfPythiaSize() throws {
        let (dataset, fixture) = try openShared()
        let big = fixture.bigStep
        let rows = dataset.rowIndices(step: big.step, batchSize: big.batchSize)
        XCTAssertEqual(Array(rows.prefix(3)), big.firstRows)
        XCTAssertEqual(rows.last, big.lastRow)
        var combined: UInt64 = 0
        for (j, r) in rows.enumerated() {
            combined = combined &+ UInt64(j + 1) &* UInt64(bitPattern: weightedSum(try dataset.tokens(r)))
        }
        XCTAssertEqual(String(combined), big.combinedWeightedSum)
    }

    func testOutOfRangeRow() throws {
        let (dataset, _) = try openShared()
        assertCorpusError(.outOfRange, mentions: ["document.idx", "4391"]) { try dataset.row(4391) }
        assertCorpusError(.outOfRange) { try dataset.row(-1) }
    }

    func testEveryDTypeReads() throws {
        let dir = try TemporaryDirectory()
        let small: [Int32] = [0, 1, 2, 100, 127]
        let wide: [Int32] = [0, 1, 50_276, 65_535, 3]
        let cases: [(IndexedDType, [Int32], [UInt8])] = [
            (.uint8, small, small.map { UInt8($0) }),
            (.int8, small, littleEndianBytes(small.map { Int8($0) })),
            (.int16, small, littleEndianBytes(small.map { Int16($0) })),
            (.uint16, wide, littleEndianBytes(wide.map { UInt16($0) })),
            (.int32, wide + [Int32.max], littleEndianBytes(wide + [Int32.max])),
            (.int64, wide, littleEndianBytes(wide.map { Int64($0) })),
            (.float32, wide, littleEndianBytes(wide.map { Float($0).bitPattern })),
            (.float64, wide, littleEndianBytes(wide.map { Double($0).bitPattern })),
        ]
        XCTAssertEqual(Set(cases.map(\.0)), Set(IndexedDType.allCases))
        for (dtype, tokens, bin) in cases {
            // Two rows: the first two tokens, then the rest.
            let writer = IndexWriter.consistent(rowLengths: [2, tokens.count - 2], width: dtype.byteWidth, dtypeCode: dtype.rawValue)
            try dir.write("d\(dtype.rawValue).idx", writer.indexBytes())
            try dir.write("d\(dtype.rawValue).bin", bin)
            let dataset = try IndexedDataset(prefix: dir.url.appendingPathComponent("d\(dtype.rawValue)").path)
            XCTAssertEqual(dataset.dtype, dtype)
            XCTAssertEqual(try dataset.row(0) + dataset.row(1), tokens, "\(dtype)")
            XCTAssertEqual(Array(try dataset.tokens(1)), Array(tokens.dropFirst(2)), "\(dtype)")
        }
    }

    func testNonIntegralTokensAreRejected() throws {
        let dir = try TemporaryDirectory()
        let floats = IndexWriter.consistent(rowLengths: [2], width: 4, dtypeCode: 6)
        try dir.write("f.idx", floats.indexBytes())
        try dir.write("f.bin", littleEndianBytes([Float(3).bitPattern, Float(1.5).bitPattern]))
        assertCorpusError(.invalidToken, mentions: ["f.bin", "row 0 token 1", "1.5"]) {
            try IndexedDataset(prefix: dir.url.appendingPathComponent("f").path).row(0)
        }
        let longs = IndexWriter.consistent(rowLengths: [1], width: 8, dtypeCode: 5)
        try dir.write("l.idx", longs.indexBytes())
        try dir.write("l.bin", littleEndianBytes([Int64(1) << 40]))
        assertCorpusError(.invalidToken) { try IndexedDataset(prefix: dir.url.appendingPathComponent("l").path).row(0) }
        // The no-copy view is checked too: it never hands out 0 (or a truncated id) for such a token.
        assertCorpusError(.invalidToken, mentions: ["row 0 token 1"]) {
            try IndexedDataset(prefix: dir.url.appendingPathComponent("f").path).tokens(0)
        }
        assertCorpusError(.invalidToken) { try IndexedDataset(prefix: dir.url.appendingPathComponent("l").path).tokens(0) }
    }

    func testMalformedIndexFiles() throws {
        let dir = try TemporaryDirectory()
        let good = IndexWriter.consistent(rowLengths: [3, 4], width: 2, dtypeCode: 8)
        let bin = littleEndianBytes((0..<7).map { UInt16($0) })
        func open(_ name: String, index: [UInt8], data: [UInt8] = bin) throws -> IndexedDataset {
            try dir.write(name + ".idx", index)
            try dir.write(name + ".bin", data)
            return try IndexedDataset(prefix: dir.url.appendingPathComponent(name).path)
        }
        XCTAssertEqual(try open("good", index: good.indexBytes()).row(1), [3, 4, 5, 6])
        // Opening by either file's name works too.
        XCTAssertEqual(try IndexedDataset(prefix: dir.url.appendingPathComponent("good.idx").path).count, 2)

        let full = good.indexBytes()
        assertCorpusError(.sizeMismatch, mentions: ["truncated.idx", "does not match"]) {
            try open("truncated", index: Array(full.dropLast(3)))
        }
        assertCorpusError(.sizeMismatch, mentions: ["trailing.idx"]) { try open("trailing", index: full + [0]) }
        assertCorpusError(.sizeMismatch, mentions: ["header.idx", "header"]) { try open("header", index: Array(full.prefix(20))) }
        assertCorpusError(.sizeMismatch, mentions: ["nothing.idx"]) { try open("nothing", index: []) }

        var writer = good
        writer.magic = Array("MMIDIDY".utf8) + [0, 0]
        assertCorpusError(.badMagic, mentions: ["magic.idx", "magic"]) { try open("magic", index: writer.indexBytes()) }
        assertCorpusError(.badMagic) { try open("shortmagic", index: Array("NOTANIDX\0\0\0".utf8)) }

        writer = good
        writer.version = 2
        assertCorpusError(.unsupportedVersion, mentions: ["version.idx", "version 2"]) { try open("version", index: writer.indexBytes()) }

        writer = good
        writer.dtypeCode = 9
        assertCorpusError(.unknownDType, mentions: ["dtype.idx", "dtype code 9"]) { try open("dtype", index: writer.indexBytes()) }
        writer.dtypeCode = 0
        assertCorpusError(.unknownDType) { try open("dtype0", index: writer.indexBytes()) }

        writer = good
        writer.countOverride = UInt64.max / 2
        assertCorpusError(.sizeMismatch, mentions: ["hugecount.idx"]) { try open("hugecount", index: writer.indexBytes()) }
        writer = good
        writer.docCountOverride = 5
        assertCorpusError(.sizeMismatch) { try open("doccount", index: writer.indexBytes()) }

        // Rows that reach past the end of .bin.
        assertCorpusError(.inconsistentIndex, mentions: ["shortbin.idx", "row 1", "shortbin.bin"]) {
            try open("shortbin", index: full, data: Array(bin.dropLast(1)))
        }
        writer = good
        writer.pointers[0] = 100
        assertCorpusError(.inconsistentIndex, mentions: ["row 0"]) { try open("pointer", index: writer.indexBytes()) }
        writer = good
        writer.pointers[1] = -2
        assertCorpusError(.inconsistentIndex, mentions: ["row 1"]) { try open("negpointer", index: writer.indexBytes()) }
        writer = good
        writer.sizes[1] = Int32.max
        assertCorpusError(.inconsistentIndex, mentions: ["row 1"]) { try open("hugesize", index: writer.indexBytes()) }
        writer = good
        writer.sizes[0] = -1
        assertCorpusError(.inconsistentIndex, mentions: ["negative"]) { try open("negsize", index: writer.indexBytes()) }
        writer = good
        writer.pointers[1] = 5
        assertCorpusError(.inconsistentIndex, mentions: ["multiple"]) { try open("unaligned", index: writer.indexBytes()) }
        writer = good
        writer.documentIndex = [0, 2, 1]
        assertCorpusError(.inconsistentIndex, mentions: ["doc_idx"]) { try open("docidx", index: writer.indexBytes()) }

        assertCorpusError(.io, mentions: ["missing.idx"]) {
            try IndexedDataset(prefix: dir.url.appendingPathComponent("missing").path)
        }
        try dir.write("nobin.idx", full)
        assertCorpusError(.io, mentions: ["nobin.bin"]) {
            try IndexedDataset(prefix: dir.url.appendingPathComponent("nobin").path)
        }
    }

    func testTruncatedRealIndex() throws {
        let idx = try TestPaths.sharedFile("data/minipile/document.idx")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: idx)))
        let dir = try TemporaryDirectory()
        try dir.write("document.idx", Array(bytes.dropLast(8)))
        try dir.write("document.bin", [UInt8]())
        assertCorpusError(.sizeMismatch, mentions: ["document.idx", "4391"]) {
            try IndexedDataset(prefix: dir.url.appendingPathComponent("document").path)
        }
        // Intact index, empty .bin: every row is past the end.
        try dir.write("document.idx", bytes)
        assertCorpusError(.inconsistentIndex, mentions: ["row 0", "document.bin"]) {
            try IndexedDataset(prefix: dir.url.appendingPathComponent("document").path)
        }
    }
}

final class RowSelectionTests: XCTestCase {
    func testRangeSyntax() throws {
        XCTAssertEqual(try RowSelection.parseRange("2:5", upperLimit: 10), 2..<5)
        XCTAssertEqual(try RowSelection.parseRange("3:", upperLimit: 10), 3..<10)
        XCTAssertEqual(try RowSelection.parseRange(":4", upperLimit: 10), 0..<4)
        XCTAssertEqual(try RowSelection.parseRange(":", upperLimit: 10), 0..<10)
        XCTAssertEqual(try RowSelection.parseRange("7", upperLimit: 10), 7..<8)
        for bad in ["5:5", "6:2", "-1:3", "0:11", "10", "x:3", "1:2:3", ""] {
            assertCorpusError(.outOfRange, mentions: ["row range '"]) { try RowSelection.parseRange(bad, upperLimit: 10) }
        }
    }

    func testStepRowsAreBatchPositions() throws {
        // Mini suite: step 1999, B = 4, 4391 rows -> rows 3605...3608.
        XCTAssertEqual(try RowSelection.rows(step: 1999, batchSize: 4, rows: nil, rowCount: 4391), [3605, 3606, 3607, 3608])
        XCTAssertEqual(try RowSelection.rows(step: 1999, batchSize: 4, rows: "1:3", rowCount: 4391), [3606, 3607])
        // Wrapping inside a batch.
        XCTAssertEqual(try RowSelection.rows(step: 1, batchSize: 4, rows: nil, rowCount: 6), [4, 5, 0, 1])
        assertCorpusError(.outOfRange) { try RowSelection.rows(step: 0, batchSize: 4, rows: "0:5", rowCount: 100) }
        // Without a step: absolute rows.
        XCTAssertEqual(try RowSelection.rows(step: nil, batchSize: 4, rows: "98:", rowCount: 100), [98, 99])
        assertCorpusError(.outOfRange) { try RowSelection.rows(step: nil, batchSize: 4, rows: "99:101", rowCount: 100) }
    }
}
