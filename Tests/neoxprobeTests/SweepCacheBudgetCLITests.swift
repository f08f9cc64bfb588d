import Foundation
import TestSupport
import XCTest

/// CKA with bounded disk: Pythia's own batch (step 1999, 1024 rows) planned at full length, then
/// swept at a short length under a small `--cache-budget` (recompute, no activation file) and a
/// large one (cache); the plan and the chosen path are printed, no file exceeds the budget, and
/// the two paths' CKA agree to 1e-12.
final class SweepCacheBudgetCLITests: XCTestCase {
    func baseArguments(seqLen: Int?) -> [String] {
        ["sweep", "--suite", CLI.suite.path, "--steps", "16,2000", "--data", CLI.dataset.path,
         "--batch-of-step", "1999", "--batch-size", "1024", "--probes", "outliers,cka"] + (seqLen.map { ["--seq-len", String($0)] } ?? [])
    }

    func testPlanOfPythiaBatchStatesDiskAndChoosesRecompute() throws {
        try CLI.requireShared()
        let out = try CLI.temporaryDirectory(self).appendingPathComponent("results")
        let plan = try CLI.run(baseArguments(seqLen: nil) + ["--cache-budget", "1G", "--plan", "--out", out.path])
        XCTAssertEqual(plan.status, 0, plan.standardError)
        // 1024 × 2048 tokens × 64 wide × 16 sites × 4 bytes = 8 GiB of reference activations.
        XCTAssertTrue(plan.output.contains("2097152 evaluation tokens in 1024 sequences"), plan.output)
        XCTAssertTrue(plan.output.contains("(a) cache the reference's activations: 8.00 GiB on disk (budget 1.00 GiB"), plan.output)
        XCTAssertTrue(plan.output.contains("chosen: (b) recompute: the cache (8.00 GiB) exceeds --cache-budget 1.00 GiB"), plan.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "--plan must write nothing")
    }

    func testRecomputeUnderBudgetEqualsCache() throws {
        try CLI.requireShared()
        let scratch = try CLI.temporaryDirectory(self)
        let budget = 16 << 20   // the cache would be 1024 × 16 tokens × 64 × 16 sites × 4 B = 64 MiB
        let small = scratch.appendingPathComponent("recompute"), large = scratch.appendingPathComponent("cached")
        let recompute = try CLI.run(baseArguments(seqLen: 16) + ["--cache-budget", "16M", "--out", small.path])
        XCTAssertEqual(recompute.status, 0, recompute.standardError)
        XCTAssertTrue(recompute.standardError.contains("sweep plan: 2 checkpoints"), recompute.standardError)
        XCTAssertTrue(recompute.standardError.contains("chosen: (b) recompute: the cache (64.0 MiB) exceeds --cache-budget 16.0 MiB"),
                      recompute.standardError)
        XCTAssertFalse(FileManager.default.fileExists(atPath: small.appendingPathComponent(".reference").path))
        for (path, size) in try Self.files(under: small) { XCTAssertLessThanOrEqual(size, budget, "\(path) is over the budget") }

        let cached = try CLI.run(baseArguments(seqLen: 16) + ["--cache-budget", "1G", "--keep-cache", "--out", large.path])
        XCTAssertEqual(cached.status, 0, cached.standardError)
        XCTAssertTrue(cached.standardError.contains("chosen: (a) cache"), cached.standardError)
        let cacheFiles = try Self.files(under: large.appendingPathComponent(".reference"))
        XCTAssertEqual(cacheFiles.filter { $0.path.hasSuffix(".f32") }.reduce(0) { $0 + $1.size }, 64 << 20)

        let a = try Self.cka(small), b = try Self.cka(large)
        XCTAssertEqual(a.count, 2 * 4 * 4)
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for (key, value) in a {
            let other = try XCTUnwrap(b[key])
            XCTAssertLessThanOrEqual(abs(value - other), 1e-12 * max(1, abs(other)), key)
        }

        // Without --keep-cache the cache is removed once the sweep completes.
        let removed = scratch.appendingPathComponent("removed")
        let third = try CLI.run(baseArguments(seqLen: 16) + ["--cache-budget", "1G", "--out", removed.path])
        XCTAssertEqual(third.status, 0, third.standardError)
        XCTAssertFalse(FileManager.default.fileExists(atPath: removed.appendingPathComponent(".reference").path))
    }

    static func files(under directory: URL) throws -> [(path: String, size: Int)] {
        let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.fileSizeKey])
        var found: [(String, Int)] = []
        while let url = enumerator?.nextObject() as? URL {
            if let size = try url.resourceValues(forKeys: [.fileSizeKey]).fileSize { found.append((url.path, size)) }
        }
        return found
    }

    static func cka(_ results: URL) throws -> [String: Double] {
        let csv = try String(contentsOf: results.appendingPathComponent("metrics.csv"), encoding: .utf8)
        var values: [String: Double] = [:]
        for line in csv.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            if f[3] == "cka" { values["\(f[0])|\(f[1])|\(f[2])"] = Double(f[4]) }
        }
        return values
    }
}
