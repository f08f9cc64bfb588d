import Foundation
import TestSupport
import XCTest

/// `sweep --skip-broken`: a checkpoint that does not load (here a safetensors file cut short, as a
/// partial download leaves it) stops a sweep with an error naming its step, or is passed over,
/// listed in run.json and measured by a later run once it is whole.
final class SkipBrokenCLITests: XCTestCase {
    func testBrokenCheckpointIsNamedBySkippedAndMeasuredLater() throws {
        try CLI.requireShared()
        let directory = try CLI.temporaryDirectory(self)
        let suite = directory.appendingPathComponent("suite")
        try FileManager.default.createDirectory(at: suite, withIntermediateDirectories: true)
        for step in ["step0", "step16", "step2000"] {
            try FileManager.default.copyItem(at: CLI.suite.appendingPathComponent(step), to: suite.appendingPathComponent(step))
        }
        let weights = suite.appendingPathComponent("step16/model.safetensors")
        let whole = try Data(contentsOf: weights)
        try whole.prefix(100_000).write(to: weights)
        let out = directory.appendingPathComponent("results")
        let sweep = ["sweep", "--suite", suite.path, "--data", CLI.dataset.path, "--rows", "0:1", "--seq-len", "32",
                     "--probes", "outliers", "--out", out.path, "--quiet"]

        let stopped = try CLI.run(sweep)
        XCTAssertEqual(stopped.status, 1, stopped.standardError)
        XCTAssertTrue(stopped.standardError.contains("step 16 ("), stopped.standardError)
        XCTAssertTrue(stopped.standardError.contains("model.safetensors"), stopped.standardError)

        let skipped = try CLI.run(sweep + ["--skip-broken"])
        XCTAssertEqual(skipped.status, 0, skipped.standardError)
        let run = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("run.json"))) as? [String: Any])
        let broken = try XCTUnwrap(run["skipped_broken"] as? [[String: Any]])
        XCTAssertEqual(broken.map { $0["step"] as? Int }, [16])
        XCTAssertEqual(run["status"] as? String, "running", "a sweep with a skipped step is not complete")
        let metrics = try String(contentsOf: out.appendingPathComponent("metrics.csv"), encoding: .utf8)
        XCTAssertFalse(metrics.contains("\n16,"), "no rows for the skipped step")
        XCTAssertTrue(metrics.contains("\n2000,"))

        try whole.write(to: weights)
        let resumed = try CLI.run(sweep)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        let after = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("run.json"))) as? [String: Any])
        XCTAssertNil(after["skipped_broken"])
        XCTAssertEqual(after["status"] as? String, "complete")
        XCTAssertTrue(try String(contentsOf: out.appendingPathComponent("metrics.csv"), encoding: .utf8).contains("\n16,"))
    }
}
