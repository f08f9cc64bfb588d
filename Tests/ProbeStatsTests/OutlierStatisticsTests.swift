import TestSupport
import XCTest
@testable import ProbeStats

final class OutlierStatisticsTests: XCTestCase {
    /// Feeds `values` in uneven chunks so chunk merging is exercised.
    private func statistics(_ values: [Float], rows: Int, dim: Int, chunks: [Int]) -> OutlierStatistics {
        var stats = OutlierStatistics(dimension: dim)
        var start = 0
        var sizes = chunks
        while start < rows {
            let take = min(sizes.isEmpty ? rows - start : sizes.removeFirst(), rows - start)
            values.withUnsafeBufferPointer { all in
                let slice = UnsafeBufferPointer(rebasing: all[(start * dim)..<((start + take) * dim)])
                stats.add(rows: slice, rowCount: take, tokenOffset: start)
            }
            start += take
        }
        return stats
    }

    private func check(_ name: String, topK: Int, chunks: [Int]) throws {
        let fixture = try ProbeFixtures.Synthetic()
        let (values, shape) = try fixture.array(name)
        let expected = try fixture.dictionary("outliers_\(name)")
        let stats = statistics(values, rows: shape[0], dim: shape[1], chunks: chunks)
        XCTAssertEqual(stats.tokenCount, shape[0])
        assertClose(stats.maxAbs, try fixture.number("max_abs", in: expected), "max_abs")
        XCTAssertEqual(stats.argmaxToken, expected["argmax_token"] as? Int)
        XCTAssertEqual(stats.argmaxDim, expected["argmax_dim"] as? Int)
        assertClose(stats.meanNorm, try fixture.number("mean_norm", in: expected), "mean_norm")
        assertClose(try XCTUnwrap(stats.kurtosis), try fixture.number("kurtosis", in: expected), "kurtosis")
        let best = try XCTUnwrap(stats.maxDimensionKurtosis)
        assertClose(best.value, try fixture.number("max_dim_kurtosis", in: expected), "max_dim_kurtosis")
        XCTAssertEqual(best.dim, expected["max_dim_kurtosis_dim"] as? Int)
        let top = stats.topDimensions(topK)
        XCTAssertEqual(top.map(\.dim), expected["top_dims"] as? [Int])
        let topMax = try XCTUnwrap(expected["top_max_abs"] as? [Double])
        for (entry, value) in zip(top, topMax) { assertClose(entry.maxAbs, value, "top max_abs") }
    }

    func testMatchesNumpyInUnevenChunks() throws {
        try check("x", topK: 5, chunks: [7, 100, 1, 64])
        try check("y", topK: 3, chunks: [1, 2, 3])
    }

    func testMatchesNumpyInOneChunk() throws {
        try check("x", topK: 5, chunks: [100_000])
    }

    func testNonFiniteValuesAreCountedNotRanked() {
        var stats = OutlierStatistics(dimension: 2)
        stats.add(rows: [1, .infinity, .nan, -3], rowCount: 2, tokenOffset: 0)
        XCTAssertEqual(stats.maxAbs, 3)
        XCTAssertEqual(stats.argmaxToken, 1)
        XCTAssertEqual(stats.nonFiniteCount, 2)
        XCTAssertTrue(stats.kurtosis.map { $0.isNaN } ?? true)
    }

    func testConstantDataHasNoKurtosis() {
        var stats = OutlierStatistics(dimension: 2)
        stats.add(rows: [Float](repeating: 1, count: 8), rowCount: 4, tokenOffset: 0)
        XCTAssertNil(stats.kurtosis)
        XCTAssertNil(stats.maxDimensionKurtosis)
    }
}
