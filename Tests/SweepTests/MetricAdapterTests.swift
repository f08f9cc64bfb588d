import ProbeStats
import Results
import XCTest
@testable import Sweep

/// The adapters from statistics to `step,layer,site,metric,value` rows (Sweep/MetricAdapters.swift).
final class MetricAdapterTests: XCTestCase {
    func testMetricRowsNamesAndTokenOffsets() throws {
        var stats = OutlierStatistics(dimension: 3)
        stats.add(rows: [1, 2, 3, 4, 5, 6], rowCount: 2, tokenOffset: 10)
        stats.add(rows: [0, -9, 1], rowCount: 1, tokenOffset: 12)
        let rows = stats.metricRows(step: 64, layer: 2, site: "resid_post", topK: 2)
        let byName = Dictionary(rows.map { ($0.metric, $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byName["max_abs"], 9)
        XCTAssertEqual(byName["argmax_token"], 12)
        XCTAssertEqual(byName["argmax_dim"], 1)
        XCTAssertEqual(byName["token_count"], 3)
        XCTAssertEqual(byName["top1_dim"], 1)
        XCTAssertEqual(byName["top1_max_abs"], 9)
        XCTAssertEqual(byName["top2_dim"], 2)
        XCTAssertNil(byName["top3_dim"])
        XCTAssertTrue(rows.allSatisfy { $0.step == 64 && $0.layer == 2 && $0.site == "resid_post" })
        XCTAssertNil(byName["argmax_sequence"], "no sequence length, no (sequence, position)")
        // With T = 5 the flat index 12 is sequence 2, position 2.
        let located = Dictionary(stats.metricRows(step: 64, layer: 2, site: "resid_post", topK: 2, sequenceLength: 5).map { ($0.metric, $0.value) },
                                 uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(located["argmax_token"], 12)
        XCTAssertEqual(located["argmax_sequence"], 2)
        XCTAssertEqual(located["argmax_position"], 2)
    }

    func testUndefinedKurtosisIsOmitted() {
        var stats = OutlierStatistics(dimension: 2)
        stats.add(rows: [Float](repeating: 1, count: 8), rowCount: 4, tokenOffset: 0)
        XCTAssertFalse(stats.metricRows(step: 0, layer: nil, site: "s").contains { $0.metric == "kurtosis" })
    }

    func testCKARowsNameTheDebiasedEstimateOnlyWhenComputed() {
        var x = [Float](), y = [Float]()
        for i in 0..<32 { x += [Float(i % 5), Float(i % 3) - 1]; y += [Float(i % 7), Float(i) / 8] }
        var plain = CKAAccumulator(dimX: 2, dimY: 2)
        plain.add(x: x, y: y, rows: 32)
        XCTAssertEqual(plain.result().metricRows(step: 16, layer: 1, site: "attn_out").map(\.metric), ["cka", "cka_tokens"])
        var debiased = CKAAccumulator(dimX: 2, dimY: 2, minibatchSize: 8)
        debiased.add(x: x, y: y, rows: 32)
        let rows = debiased.result().metricRows(step: 16, layer: 1, site: "attn_out")
        XCTAssertEqual(rows.map(\.metric), ["cka", "cka_tokens", "cka_debiased", "cka_debiased_tokens"])
        XCTAssertTrue(rows.allSatisfy { $0.step == 16 && $0.layer == 1 && $0.site == "attn_out" })
    }
}
