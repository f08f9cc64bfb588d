import Formats
import Foundation
import TestSupport
import XCTest

/// `sweep --probes gradients` end to end on two pythia-mini checkpoints: the probe's loss and a
/// tensor's gradient norm agree with `neoxprobe grad` on the same tokens, cosine_previous appears
/// from the second checkpoint on, and the report draws the gradients section.
final class GradientSweepCLITests: XCTestCase {
    func testSweepAgreesWithGradAndReportPlotsIt() throws {
        try CLI.requireShared()
        let dir = try CLI.temporaryDirectory(self), results = dir.appendingPathComponent("results")
        let length = 64, tensor = "gpt_neox.layers.3.mlp.dense_4h_to_h.weight"
        let sweep = try CLI.run(["sweep", "--suite", CLI.suite.path, "--steps", "16,2000", "--data", CLI.dataset.path,
                                 "--rows", "0:2", "--seq-len", String(length), "--probes", "gradients", "--out", results.path, "--quiet"])
        XCTAssertEqual(sweep.status, 0, sweep.standardError)
        var measured: [String: Double] = [:]
        for line in try String(contentsOf: results.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            measured["\(f[0])|\(f[1])|\(f[2])|\(f[3])"] = Double(f[4])
        }
        XCTAssertNil(measured["16|3|grad:\(tensor)|cosine_previous"])
        XCTAssertNotNil(measured["2000|3|grad:\(tensor)|cosine_previous"])
        XCTAssertNotNil(measured["2000|0|grad:gpt_neox.layers.0.attention.w_ov.head1|effective_rank"])
        XCTAssertNotNil(measured["2000|3|grad:resid_post|kurtosis"])

        // The same tokens through `grad`: the first `length` tokens of rows 0 and 1.
        let rows = try CLI.run(["batch", "--data", CLI.dataset.path, "--rows", "0:2"])
        XCTAssertEqual(rows.status, 0, rows.standardError)
        let tokens = rows.output.split(separator: "\n").map { $0.split(separator: " ").prefix(length).joined(separator: " ") }
        let file = dir.appendingPathComponent("ids.txt"), out = dir.appendingPathComponent("g.safetensors")
        try (tokens.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        let grad = try CLI.json(try CLI.run(["grad", "--model", CLI.model.path, "--tokens", "@" + file.path,
                                             "--params", tensor, "--out", out.path, "--json"]))
        let loss = try XCTUnwrap(grad["loss"] as? Double)
        XCTAssertEqual(try XCTUnwrap(measured["2000||gradients|loss"]), loss, accuracy: 1e-6 * loss)
        XCTAssertEqual(measured["2000||gradients|token_count"], (grad["token_count"] as? Int).map(Double.init))
        let g = try XCTUnwrap(SafeTensors.read(out)[tensor]).float32()
        let norm = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        XCTAssertEqual(try XCTUnwrap(measured["2000|3|grad:\(tensor)|frobenius_norm"]), norm, accuracy: 1e-5 * norm)

        let report = try CLI.run(["report", results.path])
        XCTAssertEqual(report.status, 0, report.standardError)
        let html = try String(contentsOf: results.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("Gradients of the loss on the evaluation tokens"))
        XCTAssertTrue(html.contains("Gradient Frobenius norm of mlp.dense_4h_to_h.weight"))
    }
}
