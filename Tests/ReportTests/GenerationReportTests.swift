import Foundation
import Report
import Results
import XCTest

/// The generation section: drawn from memorization / lambada_generation rows, absent without them.
final class GenerationReportTests: XCTestCase {
    func testGenerationChartsAppearOnlyWithTheirRows() throws {
        var rows: [MetricRow] = []
        for (i, step) in [0, 64, 2000].enumerated() {
            let v = Double(i) / 10
            rows += [MetricRow(step: step, layer: nil, site: SweepNames.memorizationSite, metric: MetricName.memorizationScore, value: v),
                     MetricRow(step: step, layer: nil, site: SweepNames.memorizationSite, metric: MetricName.memorizedFraction, value: v / 2),
                     MetricRow(step: step, layer: nil, site: SweepNames.memorizationSite, metric: MetricName.rowCount, value: 32),
                     MetricRow(step: step, layer: nil, site: SweepNames.lambadaGenerationSite, metric: MetricName.generationPerplexity, value: 100 - v),
                     MetricRow(step: step, layer: nil, site: SweepNames.lambadaGenerationSite, metric: MetricName.unmaskAgreement(1), value: v),
                     MetricRow(step: step, layer: nil, site: SweepNames.lambadaGenerationSite, metric: MetricName.unmaskPerplexity(1), value: 50)]
        }
        let html = HTMLReport(rows: rows).render()
        XCTAssertTrue(html.contains("Memorization of training rows (32 rows)"))
        XCTAssertTrue(html.contains("LAMBADA causal unmasking"))
        XCTAssertTrue(html.contains("perplexity of the model&#39;s own generations") || html.contains("perplexity of the model's own generations"))
        let without = HTMLReport(rows: rows.filter { $0.site != SweepNames.memorizationSite && $0.site != SweepNames.lambadaGenerationSite }
            + [MetricRow(step: 0, layer: nil, site: "lambada", metric: "acc", value: 0.1)]).render()
        XCTAssertFalse(without.contains("Generation (greedy, KV cache)"))
    }
}
