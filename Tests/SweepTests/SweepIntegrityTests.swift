import Foundation
import Results
import TestSupport
import XCTest
@testable import Sweep

/// What a resumed sweep skips is re-verified (per-file row count and checksum; checkpoint file
/// sizes and times), and a sweep can be extended with probes and steps but not changed.
final class SweepIntegrityTests: XCTestCase {
    func testDamagedPerStepFilesAreMeasuredAgain() throws {
        try SweepFixture.requireShared()
        let output = try SweepFixture.temporaryDirectory("damaged")
        defer { try? FileManager.default.removeItem(at: output) }
        var options = SweepFixture.options(output: output, probes: [.outliers, .weights])
        options.steps = "0,4"
        _ = try SweepRunner(options: options).run()
        let metrics = output.appendingPathComponent("metrics.csv")
        let original = try Data(contentsOf: metrics)
        let outliers = output.appendingPathComponent("steps/step000000/outliers.csv")
        let intact = try Data(contentsOf: outliers)
        XCTAssertEqual(SweepIntegrity.state(of: outliers), .verified)

        // Truncated at a line boundary: still a valid CSV, so only the sidecar can tell.
        let lines = intact.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        try Data((lines.prefix(lines.count / 2).joined(separator: [UInt8(ascii: "\n")]) + [UInt8(ascii: "\n")])).write(to: outliers)
        XCTAssertNoThrow(try MetricsCSV.read(contentsOf: outliers))
        guard case .damaged(let why) = SweepIntegrity.state(of: outliers) else { return XCTFail("truncation not detected") }
        XCTAssertTrue(why.contains("truncated or edited"), why)
        XCTAssertEqual(try SweepRunner(options: options).run().processedSteps, [0])
        XCTAssertEqual(try Data(contentsOf: outliers), intact)
        XCTAssertEqual(try Data(contentsOf: metrics), original)

        // One value edited, and a file whose sidecar is gone (killed between the two renames).
        var edited = String(decoding: intact, as: UTF8.self)
        let comma = edited.lastIndex(of: ",")!
        edited.replaceSubrange(edited.index(after: comma)..., with: "1\n")
        try edited.write(to: outliers, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: SweepIntegrity.sumURL(output.appendingPathComponent("steps/step000004/weights.csv")))
        XCTAssertEqual(try SweepRunner(options: options).run().processedSteps, [0, 4])
        XCTAssertEqual(try Data(contentsOf: metrics), original)
    }

    func testChangedCheckpointIsReverifiedAndMeasuredAgain() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("changed")
        defer { try? FileManager.default.removeItem(at: root) }
        // A suite of copies, so that one checkpoint can be touched and then replaced.
        let suite = root.appendingPathComponent("suite")
        for step in [0, 4] {
            try FileManager.default.createDirectory(at: suite, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: SweepFixture.suite.appendingPathComponent("step\(step)"), to: suite.appendingPathComponent("step\(step)"))
        }
        var options = SweepFixture.options(output: root.appendingPathComponent("out"), probes: [.weights])
        options.suite = suite.path
        options.data = nil
        _ = try SweepRunner(options: options).run()
        let metrics = root.appendingPathComponent("out/metrics.csv")
        let original = try Data(contentsOf: metrics)

        // Touched, same bytes: hashed again, found equal, trusted (the record's times refreshed).
        let step4 = suite.appendingPathComponent("step4")
        for name in try FileManager.default.contentsOfDirectory(atPath: step4.path) {
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 60)], ofItemAtPath: step4.appendingPathComponent(name).path)
        }
        let results = SweepResults(directory: options.output.standardizedFileURL)
        XCTAssertFalse(results.recordMatchesFiles(step: 4, checkpoint: SweepCheckpoint(step: 4, name: "step4", directory: step4)))
        XCTAssertEqual(try SweepRunner(options: options).run().processedSteps, [])
        XCTAssertTrue(results.recordMatchesFiles(step: 4, checkpoint: SweepCheckpoint(step: 4, name: "step4", directory: step4)))
        XCTAssertEqual(try Data(contentsOf: metrics), original)

        // Replaced by other weights (step 16's): its results are thrown away and measured again,
        // equal to a fresh sweep of the changed suite.
        try FileManager.default.removeItem(at: step4)
        try FileManager.default.copyItem(at: SweepFixture.suite.appendingPathComponent("step16"), to: step4)
        XCTAssertEqual(try SweepRunner(options: options).run().processedSteps, [4])
        XCTAssertNotEqual(try Data(contentsOf: metrics), original)
        var fresh = options
        fresh.output = root.appendingPathComponent("fresh")
        _ = try SweepRunner(options: fresh).run()
        XCTAssertEqual(try Data(contentsOf: metrics), try Data(contentsOf: root.appendingPathComponent("fresh/metrics.csv")))
    }

    func testSweepIsExtendedWithProbesAndStepsButNotChanged() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("extend")
        defer { try? FileManager.default.removeItem(at: root) }
        let output = root.appendingPathComponent("out")
        var options = SweepFixture.options(output: output, probes: [.outliers, .cka])
        options.steps = "0,4"
        options.keepCache = true   // else the step added below rebuilds the reference's activations (step 4 runs again)
        _ = try SweepRunner(options: options).run()

        // A probe added to the same steps, then a step added: only the new work runs.
        var added = options
        added.probes = [.weights]
        XCTAssertEqual(try SweepRunner(options: added).run().processedSteps, [0, 4])
        var more = options
        more.probes = [.outliers, .cka, .weights]
        more.steps = "0,4,16"
        XCTAssertEqual(try SweepRunner(options: more).run().processedSteps, [16], "the reference stays the recorded step 4")
        let run = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("run.json"))) as? [String: Any])
        XCTAssertEqual(run["reference_step"] as? Int, 4, "recorded once, not moved to the new last step")
        XCTAssertEqual(run["probes"] as? [String], ["outliers", "cka", "weights"])
        XCTAssertEqual(Set((run["probe_fingerprints"] as? [String: String] ?? [:]).keys), ["outliers", "cka", "weights"])

        // The same as one sweep of everything with that reference.
        var whole = more
        whole.output = root.appendingPathComponent("whole")
        whole.referenceStep = 4
        _ = try SweepRunner(options: whole).run()
        for name in ["metrics.csv", "run.json"] {
            XCTAssertEqual(try Data(contentsOf: output.appendingPathComponent(name)), try Data(contentsOf: whole.output.appendingPathComponent(name)), name)
        }

        // Changing a measured probe's settings is refused, naming probe and setting.
        var changed = options
        changed.topK = 3
        expectSweepError(.conflictingResults, option: .output, saying: "outliers top_k: was 8, now 3") { _ = try SweepRunner(options: changed).run() }
        var moved = options
        moved.referenceStep = 0
        expectSweepError(.conflictingResults, option: .output, saying: "cka reference_step: was 4, now 0") { _ = try SweepRunner(options: moved).run() }
        // A setting probes share (the evaluation data), changed with a new probe, is refused too.
        var otherData = options
        otherData.probes = [.perplexity]
        otherData.data = .rows(prefix: SweepFixture.dataset, rows: 0..<2, sequenceLength: 128)
        expectSweepError(.conflictingResults, option: .output, saying: "data.seq_len: was 256, now 128") { _ = try SweepRunner(options: otherData).run() }
    }
}
