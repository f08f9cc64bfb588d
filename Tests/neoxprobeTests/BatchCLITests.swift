import Foundation
import TestSupport
import XCTest

/// `neoxprobe batch` end to end against the dataset facts generate_corpus.py recorded
/// (Tests/Fixtures/corpus/indexed.json).
final class BatchCLITests: XCTestCase {
    /// One printed row against a fixture row: length, first ids, last id, sum.
    private func assertRow(_ line: Substring, matches expected: [String: Any], _ label: String,
                           file: StaticString = #filePath, line number: UInt = #line) throws {
        let ids = line.split(separator: " ").map { Int($0)! }
        XCTAssertEqual(ids.count, expected["length"] as? Int, label, file: file, line: number)
        XCTAssertEqual(Array(ids.prefix(8)), expected["first"] as? [Int], label, file: file, line: number)
        XCTAssertEqual(ids.last, expected["last"] as? Int, label, file: file, line: number)
        XCTAssertEqual(ids.reduce(0, +), expected["sum"] as? Int, label, file: file, line: number)
    }

    private func lines(_ arguments: [String]) throws -> [Substring] {
        let outcome = try CLI.run(["batch", "--data", CLI.dataset.path] + arguments)
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        return outcome.output.split(separator: "\n")
    }

    func testTrainingStepBatch() throws {
        try CLI.requireShared()
        let step = try XCTUnwrap(try CLI.fixture("corpus", "indexed.json")["step"] as? [String: Any])
        let stats = try XCTUnwrap(step["stats"] as? [[String: Any]])
        let printed = try lines(["--step", String(try XCTUnwrap(step["step"] as? Int)),
                                 "--batch-size", String(try XCTUnwrap(step["batchSize"] as? Int))])
        XCTAssertEqual(printed.count, stats.count)
        for (k, (line, expected)) in zip(printed, stats).enumerated() { try assertRow(line, matches: expected, "batch position \(k)") }
        // --rows with --step picks batch positions.
        let last = try lines(["--step", String(try XCTUnwrap(step["step"] as? Int)),
                              "--batch-size", String(try XCTUnwrap(step["batchSize"] as? Int)), "--rows", "\(stats.count - 1)"])
        XCTAssertEqual(last.count, 1)
        try assertRow(last[0], matches: stats[stats.count - 1], "last batch position")
    }

    func testRowSelections() throws {
        try CLI.requireShared()
        let fixture = try CLI.fixture("corpus", "indexed.json")
        let rows = try XCTUnwrap(fixture["rows"] as? [String: [String: Any]])
        let count = try XCTUnwrap(fixture["count"] as? Int)
        let first = try lines(["--rows", "0:2"])
        XCTAssertEqual(first.count, 2)
        try assertRow(first[0], matches: try XCTUnwrap(rows["0"]), "row 0")
        try assertRow(first[1], matches: try XCTUnwrap(rows["1"]), "row 1")
        let single = try lines(["--rows", "1234"])
        XCTAssertEqual(single.count, 1)
        try assertRow(single[0], matches: try XCTUnwrap(rows["1234"]), "row 1234")
        let tail = try lines(["--rows", "\(count - 1):"])
        XCTAssertEqual(tail.count, 1)
        try assertRow(tail[0], matches: try XCTUnwrap(rows[String(count - 1)]), "last row")

        let decoded = try CLI.run(["batch", "--data", CLI.dataset.path, "--rows", "0", "--decode", "--tokenizer", CLI.tokenizer.path])
        XCTAssertEqual(decoded.status, 0, decoded.standardError)
        XCTAssertTrue(decoded.output.hasPrefix("# row 0\n"), String(decoded.output.prefix(100)))
    }

    func testBadInputs() throws {
        let missing = try CLI.temporaryDirectory(self).appendingPathComponent("nothing").path
        assertFails(try CLI.run(["batch", "--data", missing, "--rows", "0:1"]), as: .data, mentioning: [missing + ".idx"])
        assertFails(try CLI.run(["batch", "--data", missing]), as: .argument, mentioning: ["--step", "--rows"])
        assertFails(try CLI.run(["batch", "--data", missing, "--rows", "5:2"]), as: .argument, mentioning: ["--rows", "5:2"])

        try CLI.requireShared()
        let count = try XCTUnwrap(try CLI.fixture("corpus", "indexed.json")["count"] as? Int)
        assertFails(try CLI.run(["batch", "--data", CLI.dataset.path, "--rows", "\(count):"]),
                    as: .data, mentioning: ["--rows", "\(count)"])
        assertFails(try CLI.run(["batch", "--data", CLI.dataset.path, "--step", "0", "--batch-size", "4", "--rows", "0:9"]),
                    as: .data, mentioning: ["--rows", "0:9"])
    }
}
