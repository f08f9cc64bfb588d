import Foundation
import TestSupport
import XCTest

/// `neoxprobe sweep` then `neoxprobe report` end to end: two checkpoints of pythia-mini, every
/// probe, the metrics against the PyTorch/HF reference (Tests/Fixtures/sweep/expected.json).
final class SweepReportCLITests: XCTestCase {
    func testSweepThenReport() throws {
        try CLI.requireShared()
        let fixture = try CLI.fixture("sweep", "expected.json")
        let rowsRange = try XCTUnwrap(fixture["rows_range"] as? [Int])
        let sequenceLength = try XCTUnwrap(fixture["seq_len"] as? Int)
        let lambadaLimit = try XCTUnwrap(fixture["lambada_limit"] as? Int)
        let reference = try XCTUnwrap(fixture["reference_step"] as? Int)
        // The first and last steps: the last is the fixture's CKA reference (the default, the last selected).
        let allSteps = try XCTUnwrap(fixture["steps"] as? [Int])
        let steps = [allSteps[0], reference]
        XCTAssertEqual(reference, allSteps.last)

        let results = try CLI.temporaryDirectory(self).appendingPathComponent("results")
        let sweep = try CLI.run([
            "sweep", "--suite", CLI.suite.path, "--steps", steps.map(String.init).joined(separator: ","),
            "--data", CLI.dataset.path, "--rows", "\(rowsRange[0]):\(rowsRange[1])", "--seq-len", String(sequenceLength),
            "--probes", "outliers,cka,weights,perplexity,lambada", "--lambada-data", CLI.lambada.path,
            "--lambada-limit", String(lambadaLimit), "--tokenizer", CLI.tokenizer.path, "--out", results.path, "--quiet",
        ])
        XCTAssertEqual(sweep.status, 0, sweep.standardError)
        XCTAssertTrue(sweep.output.hasPrefix("sweep: \(steps.count) checkpoints measured"), sweep.output)

        // Every reference row of the chosen steps is in metrics.csv and agrees.
        let csv = try String(contentsOf: results.appendingPathComponent("metrics.csv"), encoding: .utf8)
        var lines = csv.split(separator: "\n")
        XCTAssertEqual(lines.removeFirst(), "step,layer,site,metric,value")
        var measured: [String: Double] = [:]
        for line in lines {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            XCTAssertEqual(fields.count, 5, String(line))
            measured["\(fields[0])|\(fields[1])|\(fields[2])|\(fields[3])"] = Double(fields[4])
        }
        var compared = 0
        for row in try XCTUnwrap(fixture["rows"] as? [[Any]]) {
            let step = try XCTUnwrap(row[0] as? Int)
            guard steps.contains(step) else { continue }
            let layer = (row[1] as? Int).map(String.init) ?? ""
            let site = try XCTUnwrap(row[2] as? String), metric = try XCTUnwrap(row[3] as? String)
            let expected = try XCTUnwrap((row[4] as? NSNumber)?.doubleValue)
            let label = "step \(step) layer \(layer) \(site) \(metric)"
            let actual = try XCTUnwrap(measured["\(step)|\(layer)|\(site)|\(metric)"], "metrics.csv has no \(label)")
            if metric.hasSuffix("_dim") || metric.hasSuffix("_token") || metric.hasSuffix("tokens") || metric == "token_count" {
                XCTAssertEqual(actual, expected, label)
            } else {
                assertClose(actual, expected, label)
            }
            compared += 1
        }
        XCTAssertGreaterThan(compared, 0)
        let run = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: results.appendingPathComponent("run.json"))) as? [String: Any])
        XCTAssertEqual(run["status"] as? String, "complete")

        // Rerunning resumes: nothing left to measure.
        let again = try CLI.run(["sweep", "--suite", CLI.suite.path, "--steps", steps.map(String.init).joined(separator: ","),
                                 "--data", CLI.dataset.path, "--rows", "\(rowsRange[0]):\(rowsRange[1])", "--seq-len", String(sequenceLength),
                                 "--probes", "outliers,cka,weights,perplexity,lambada", "--lambada-data", CLI.lambada.path,
                                 "--lambada-limit", String(lambadaLimit), "--tokenizer", CLI.tokenizer.path, "--out", results.path, "--quiet"])
        XCTAssertEqual(again.status, 0, again.standardError)
        XCTAssertTrue(again.output.contains("\(steps.count) already complete"), again.output)

        let report = try CLI.run(["report", results.path])
        XCTAssertEqual(report.status, 0, report.standardError)
        let html = try String(contentsOf: results.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<svg"), "the report holds SVG plots")
        XCTAssertTrue(report.output.contains(results.appendingPathComponent("report.html").path), report.output)

        let elsewhere = results.deletingLastPathComponent().appendingPathComponent("elsewhere.html")
        XCTAssertEqual(try CLI.run(["report", results.path, "--output", elsewhere.path]).status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: elsewhere.path))
    }

    func testSweepBadInputs() throws {
        let directory = try CLI.temporaryDirectory(self)
        let out = directory.appendingPathComponent("results").path
        let missing = directory.appendingPathComponent("no-suite").path
        assertFails(try CLI.run(["sweep", "--suite", missing, "--out", out]), as: .data, mentioning: [missing])
        assertFails(try CLI.run(["sweep", "--suite", missing, "--probes", "outliers,ckaa", "--out", out]),
                    as: .argument, mentioning: ["--probes", "ckaa"])
        assertFails(try CLI.run(["sweep", "--suite", missing, "--steps", "0,later", "--out", out]),
                    as: .argument, mentioning: ["--steps", "later"])
        assertFails(try CLI.run(["sweep", "--suite", missing, "--rows", "2:1", "--out", out]), as: .argument, mentioning: ["--rows", "2:1"])

        try CLI.requireShared()
        assertFails(try CLI.run(["sweep", "--suite", CLI.suite.path, "--steps", "3", "--data", CLI.dataset.path, "--rows", "0:1", "--out", out]),
                    as: .data, mentioning: ["--steps", "3"])
        assertFails(try CLI.run(["sweep", "--suite", CLI.suite.path, "--probes", "outliers", "--out", out]),
                    as: .data, mentioning: ["--data"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/metrics.csv"))
    }

    func testReportBadInputs() throws {
        let directory = try CLI.temporaryDirectory(self)
        assertFails(try CLI.run(["report", directory.path]), as: .data, mentioning: ["metrics.csv", directory.path])
        try Data("not,a,metrics,file\n".utf8).write(to: directory.appendingPathComponent("metrics.csv"))
        assertFails(try CLI.run(["report", directory.path]), as: .data, mentioning: ["metrics.csv"])
        assertFails(try CLI.run(["report"]), as: .argument, mentioning: ["<results>"])
    }
}
