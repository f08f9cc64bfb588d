import Foundation
import TestSupport
import XCTest
@testable import Report
@testable import Results

final class MetricsCSVTests: XCTestCase {
    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("probes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func testNumbersRoundTripBitForBit() {
        let values: [Double] = [0, -0.0, 1, -3, 0.1, 1.0 / 3, 1e-300, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 123456789.125,
                                9_007_199_254_740_992, 9_007_199_254_740_994, .pi * 1e20, .nan, .infinity, -.infinity]
        for value in values {
            let text = MetricsCSV.format(value)
            let back = MetricsCSV.parse(Substring(text))!
            if value.isNaN { XCTAssertTrue(back.isNaN) } else { XCTAssertEqual(back.bitPattern, value.bitPattern, text) }
        }
        XCTAssertEqual(MetricsCSV.format(17), "17")
        XCTAssertEqual(MetricsCSV.format(0.5), "0.5")
    }

    func testWriteAndReadBack() throws {
        let directory = try temporaryDirectory()
        let url = directory.appendingPathComponent("metrics.csv")
        let rows = [
            MetricRow(step: 0, layer: 3, site: "resid_post", metric: "max_abs", value: 12.5),
            MetricRow(step: 1000, layer: nil, site: "lambada", metric: "acc", value: 0.1234567890123),
            MetricRow(step: 2, layer: nil, site: "odd,\"site\"", metric: "kurtosis", value: .nan),
        ]
        try MetricsCSV.write(rows, to: url)
        let text = try String(contentsOf: url, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("step,layer,site,metric,value\n0,3,resid_post,max_abs,12.5\n1000,,lambada,acc,"))
        let back = try MetricsCSV.read(contentsOf: url)
        XCTAssertEqual(back.count, 3)
        XCTAssertEqual(Array(back.prefix(2)), Array(rows.prefix(2)))
        XCTAssertEqual(back[2].site, "odd,\"site\"")
        XCTAssertTrue(back[2].value.isNaN)
        XCTAssertThrowsError(try MetricsCSV.decode("a,b\n1,2\n"))
    }
}
