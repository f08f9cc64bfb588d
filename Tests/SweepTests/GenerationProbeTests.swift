import Foundation
import Results
import TestSupport
import XCTest

@testable import Sweep

/// The `memorization` and `lambada_generation` probes through the sweep, against
/// Tests/Fixtures/generation/{memorization,lambada_generation}.json (generate_generation.py).
final class GenerationProbeTests: XCTestCase {
    func testMemorizationAndLambadaGenerationMatchTheReference() throws {
        try SweepFixture.requireShared()
        let fixtures = RepositoryPaths.fixtures("generation")
        let memorization = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("memorization.json"))) as? [String: Any])
        let lambada = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("lambada_generation.json"))) as? [String: Any])
        let output = try SweepFixture.temporaryDirectory("generation")
        defer { try? FileManager.default.removeItem(at: output) }
        var options = SweepOptions(suite: SweepFixture.suite.path, data: .rows(prefix: SweepFixture.dataset, rows: 0..<32, sequenceLength: 2048),
                                   probes: [.memorization, .lambadaGeneration], output: output)
        options.steps = "0,256,2000"
        options.lambadaData = SweepFixture.lambada
        options.lambadaGenerationLimit = try XCTUnwrap(lambada["count"] as? Int)
        options.unmaskSteps = try XCTUnwrap(lambada["K"] as? Int)
        options.tokenizer = SweepFixture.tokenizer
        options.verbose = false
        _ = try SweepRunner(options: options).run()

        let rows = try MetricsCSV.read(contentsOf: output.appendingPathComponent("metrics.csv"))
        let memorizationSteps = try XCTUnwrap(memorization["steps"] as? [String: [String: Any]])
        let lambadaSteps = try XCTUnwrap(lambada["steps"] as? [String: [String: Double]])
        var worst = 0.0
        for step in [0, 256, 2000] {
            let scores = try XCTUnwrap(memorizationSteps["step\(step)"]?["scores"] as? [Double])
            func value(_ site: String, _ metric: String) throws -> Double {
                try XCTUnwrap(rows.first { $0.step == step && $0.site == site && $0.metric == metric }?.value, "step \(step) \(site) \(metric)")
            }
            XCTAssertEqual(try value(SweepNames.memorizationSite, MetricName.memorizationScore), scores.reduce(0, +) / Double(scores.count), accuracy: 1e-12)
            XCTAssertEqual(try value(SweepNames.memorizationSite, MetricName.memorizedFraction),
                           Double(scores.filter { $0 == 1 }.count) / Double(scores.count))
            let perRow = try String(contentsOf: output.appendingPathComponent("steps/\(SweepRunner.stepFolder(step))/memorization_rows.csv"), encoding: .utf8)
            let lines = perRow.split(separator: "\n")
            XCTAssertEqual(lines.first, "row,score")
            XCTAssertEqual(lines.dropFirst().map { Double($0.split(separator: ",")[1])! }, scores)

            for (metric, expected) in try XCTUnwrap(lambadaSteps["step\(step)"]) {
                let ours = try value(SweepNames.lambadaGenerationSite, metric)
                worst = max(worst, abs(ours - expected) / max(abs(expected), 1e-12))
                assertClose(ours, expected, "step \(step) \(metric)", relative: 1e-4, absolute: 1e-9)
            }
        }
        print("GENERATION PROBES: memorization identical, lambada_generation max relative difference \(worst)")
        let run = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("run.json"))) as? [String: Any])
        let canonical = try XCTUnwrap(run["options"] as? [String: String])
        XCTAssertEqual(canonical["memorization_prefix"], "32")
        XCTAssertEqual(canonical["unmask_steps"], "6")
    }

    func testMemorizationNeedsTrainingRows() throws {
        try SweepFixture.requireShared()
        let output = try SweepFixture.temporaryDirectory("memorization-text")
        defer { try? FileManager.default.removeItem(at: output) }
        let options = SweepOptions(suite: SweepFixture.suite.path, data: nil, probes: [.memorization], output: output)
        XCTAssertThrowsError(try SweepRunner(options: options).run()) {
            XCTAssertEqual(($0 as? SweepError)?.option, .data)
        }
    }
}
