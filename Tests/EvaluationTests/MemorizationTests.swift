import Corpus
import Evaluation
import Foundation
import NeoX
import TestSupport
import XCTest

/// Memorization scores against the PyTorch/HF reimplementation of EleutherAI's
/// eval_memorization.py (Tests/Fixtures/generate_generation.py → generation/memorization.json):
/// every pythia-mini step, mini-Pile rows 0..<32, prefix 32, continuation 32.
final class MemorizationTests: XCTestCase {
    struct Fixture: Decodable {
        struct Step: Decodable { var scores: [Double]; var generated: [[Int32]] }
        var rows: [Int]
        var prefix: Int
        var continuation: Int
        var steps: [String: Step]
    }

    func testScoresEqualTheReferenceOnEveryStep() throws {
        try EvalFixtures.requireShared()
        let url = RepositoryPaths.fixtures("generation").appendingPathComponent("memorization.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let dataset = try IndexedDataset(prefix: ProbeFixtures.shared.appendingPathComponent("data/minipile/document").path)
        let rows = try (fixture.rows[0]..<fixture.rows[1]).map { (index: $0, tokens: Array(try dataset.row($0).prefix(64))) }
        var total = 0
        for (step, expected) in fixture.steps.sorted(by: { $0.key < $1.key }) {
            let evaluator = MemorizationEvaluator(model: try EvalFixtures.model(step), prefixLength: fixture.prefix,
                                                  continuationLength: fixture.continuation, rowsPerBatch: 16)
            let result = try evaluator.evaluate(rows: rows)
            XCTAssertEqual(result.scores.map(\.row), Array(fixture.rows[0]..<fixture.rows[1]))
            XCTAssertEqual(result.scores.map(\.score), expected.scores, step)
            let mean = expected.scores.reduce(0, +) / Double(expected.scores.count)
            XCTAssertEqual(result.meanScore, mean, accuracy: 1e-12, step)
            total += expected.scores.count
        }
        print("MEMORIZATION: per-row scores identical to the HF reimplementation on \(fixture.steps.count) steps × \(rows.count) rows (\(total) scores)")
    }

    func testSettingsAndShortRowsAreRefused() throws {
        try EvalFixtures.requireShared()
        let model = try EvalFixtures.model("step0")
        XCTAssertThrowsError(try MemorizationEvaluator(model: model, prefixLength: 0).evaluate(rows: [])) {
            XCTAssertEqual(($0 as? EvalError)?.kind, .invalidSetting)
        }
        XCTAssertThrowsError(try MemorizationEvaluator(model: model).evaluate(rows: [(index: 3, tokens: [1, 2, 3])])) {
            XCTAssertEqual(($0 as? EvalError)?.kind, .invalidInput)
            XCTAssertTrue("\($0)".contains("row 3"))
        }
    }
}
