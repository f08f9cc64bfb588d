import Foundation
import TestSupport
import XCTest

/// `Examples/LayerOutliers`, the library used the way a researcher's own package uses it, runs.
final class ExampleTests: XCTestCase {
    func testLayerOutliersExampleRunsOnPythiaMini() throws {
        let model = RepositoryPaths.shared.appendingPathComponent("models/pythia-mini/step2000")
        guard FileManager.default.fileExists(atPath: model.path) else { throw XCTSkip("../shared not present") }
        let outcome = try CommandRunner.run([model.path], executable: "layer-outliers")
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        for layer in 0..<4 { XCTAssertTrue(outcome.output.contains("blocks.\(layer).hook_resid_post  max |x|"), outcome.output) }
        XCTAssertTrue(outcome.output.contains("W_OV effective rank"), outcome.output)
        let missing = try CommandRunner.run(["/nonexistent/model"], executable: "layer-outliers")
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.standardError.contains("/nonexistent/model"), missing.standardError)
    }
}
