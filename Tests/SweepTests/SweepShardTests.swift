import Foundation
import Results
import TestSupport
import XCTest
@testable import Sweep

/// `--shard i/n`: the partition, and shards (in their own directories or one shared directory)
/// merging into the single sweep's metrics.csv and run.json, byte for byte.
final class SweepShardTests: XCTestCase {
    func testPartitionIsContiguousBalancedAndCoversEveryStep() throws {
        XCTAssertEqual(SweepShard.boundaries(sizes: Array(repeating: 13, count: 8), count: 3), [0, 3, 5, 8])
        // One big checkpoint gets a shard of its own.
        XCTAssertEqual(SweepShard.boundaries(sizes: [1, 1, 1, 1, 12], count: 2), [0, 4, 5])
        for count in 1...10 {
            for n in 0...12 {
                let sizes = (0..<n).map { 1 + ($0 * 7919) % 13 }
                let steps = Array(0..<n)
                let shares = try (0..<count).map { try SweepShard(index: $0, count: count).share(of: steps, sizes: sizes) }
                XCTAssertEqual(shares.flatMap { $0 }, steps, "every step exactly once, in order (n \(n), count \(count))")
                if n >= count { XCTAssertTrue(shares.allSatisfy { !$0.isEmpty }, "no empty shard when steps ≥ shards (n \(n), count \(count))") }
            }
        }
    }

    func testShardSpellings() throws {
        XCTAssertEqual(try SweepShard.parse("1/3"), try SweepShard(index: 1, count: 3))
        XCTAssertEqual(try SweepShard.parse("slurm", environment: ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3",
                                                                    "SLURM_ARRAY_TASK_MIN": "0"]),
                       try SweepShard(index: 2, count: 3))
        expectSweepError(.invalidOption, option: .shard, saying: "outside 0..<3") { _ = try SweepShard.parse("3/3") }
        expectSweepError(.invalidOption, option: .shard, saying: "expected i/n") { _ = try SweepShard.parse("1-3") }
        expectSweepError(.invalidOption, option: .shard, saying: "below 1") { _ = try SweepShard.parse("0/0") }
        expectSweepError(.invalidOption, option: .shard, saying: "SLURM_ARRAY_TASK_ID") { _ = try SweepShard.parse("slurm", environment: [:]) }
        expectSweepError(.invalidOption, option: .shard, saying: "--array=0-2") {
            _ = try SweepShard.parse("slurm", environment: ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"])
        }
        expectSweepError(.invalidOption, option: .shard, saying: "exceeds the maximum") { _ = try SweepShard.parse("0/\(Int.max)") }
    }

    private func options(_ output: URL, probes: [SweepProbe] = [.outliers, .cka, .weights]) -> SweepOptions {
        var options = SweepFixture.options(output: output, probes: probes)
        options.steps = "0,4,16,512,2000"
        return options
    }

    func testShardsInTheirOwnDirectoriesMergeToTheSingleSweepsBytes() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("shards")
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try SweepRunner(options: options(root.appendingPathComponent("single"))).run()
        var measured: [Int] = []
        for index in 0..<3 {
            var shard = options(root.appendingPathComponent("shard\(index)"))
            shard.shard = try SweepShard(index: index, count: 3)
            let summary = try SweepRunner(options: shard).run()
            // Each shard rebuilds the reference activations in its own directory; only the owner writes step 2000.
            measured += summary.processedSteps.filter { FileManager.default.fileExists(atPath: root.appendingPathComponent("shard\(index)/steps/\(SweepRunner.stepFolder($0))/outliers.csv").path) }
        }
        XCTAssertEqual(measured.sorted(), [0, 4, 16, 512, 2000], "each step measured by exactly one shard")
        let merged = root.appendingPathComponent("merged")
        let summary = try SweepMerge.merge(sources: (0..<3).map { root.appendingPathComponent("shard\($0)") }, into: merged)
        XCTAssertTrue(summary.complete)
        for name in ["metrics.csv", "run.json"] {
            XCTAssertEqual(try Data(contentsOf: merged.appendingPathComponent(name)), try Data(contentsOf: root.appendingPathComponent("single/\(name)")),
                           "merged \(name) differs from the single sweep's")
        }
        // Merging again (the output is a source now too) changes nothing.
        _ = try SweepMerge.merge(sources: [root.appendingPathComponent("shard1")], into: merged)
        XCTAssertEqual(try Data(contentsOf: merged.appendingPathComponent("metrics.csv")), try Data(contentsOf: root.appendingPathComponent("single/metrics.csv")))
        // A shard measured with other settings is refused by name.
        var other = options(root.appendingPathComponent("other"), probes: [.outliers])
        other.topK = 3
        other.steps = "4"
        _ = try SweepRunner(options: other).run()
        expectSweepError(.conflictingResults, option: nil, saying: "top_k 8 vs 3") {
            _ = try SweepMerge.merge(sources: [root.appendingPathComponent("shard0"), root.appendingPathComponent("other")], into: root.appendingPathComponent("bad"))
        }
    }

    func testShardsAndWholeSweepsShareOneDirectoryConcurrently() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("concurrent")
        defer { try? FileManager.default.removeItem(at: root) }
        func arguments(_ output: URL) -> [String] {
            ["sweep", "--suite", SweepFixture.suite.path, "--steps", "0,4,16,512,2000", "--data", SweepFixture.dataset, "--rows", "0:2",
             "--seq-len", "256", "--probes", "outliers,cka,weights", "--out", output.path, "--quiet"]
        }
        // The single sweep through the same binary (run.json records the tool's version).
        let single = root.appendingPathComponent("single")
        XCTAssertEqual(try CommandRunner.run(arguments(single)).status, 0)
        // Three shards at once into one directory, then merged in place.
        let shared = root.appendingPathComponent("shared")
        let shards = try (0..<3).map { try CommandRunner.start(arguments(shared) + ["--shard", "\($0)/3"]) }
        for process in shards { process.waitUntilExit(); XCTAssertEqual(process.terminationStatus, 0) }
        XCTAssertTrue(try SweepMerge.merge(sources: [shared], into: shared).complete)
        // Two whole sweeps at once into one directory: they share the work, neither fails.
        let two = root.appendingPathComponent("two")
        let sweeps = try (0..<2).map { _ in try CommandRunner.start(arguments(two)) }
        for process in sweeps { process.waitUntilExit(); XCTAssertEqual(process.terminationStatus, 0) }
        for name in ["metrics.csv", "run.json"] {
            let expected = try Data(contentsOf: single.appendingPathComponent(name))
            XCTAssertEqual(try Data(contentsOf: shared.appendingPathComponent(name)), expected, "3 shards in one directory: \(name)")
            XCTAssertEqual(try Data(contentsOf: two.appendingPathComponent(name)), expected, "2 concurrent sweeps: \(name)")
        }
    }

    func testGradientsProbeCannotBeSharded() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("gradshard")
        defer { try? FileManager.default.removeItem(at: root) }
        var sharded = options(root.appendingPathComponent("out"), probes: [.gradients])
        sharded.shard = try SweepShard(index: 0, count: 2)
        expectSweepError(.invalidOption, option: .shard, saying: "cosine_previous") { _ = try SweepRunner(options: sharded).run() }
    }
}

/// Locks of a results directory: a held lock is waited for or (with `waitForLocks` off) named in
/// the refusal; a lock whose holder was killed does not block.
final class SweepLockTests: XCTestCase {
    func testHeldLocksAreNamedWhenNotWaiting() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("locks")
        defer { try? FileManager.default.removeItem(at: root) }
        var options = SweepFixture.options(output: root.appendingPathComponent("out"), probes: [.outliers])
        options.steps = "0,4"
        options.waitForLocks = false
        let results = SweepResults(directory: options.output.standardizedFileURL)
        let held = try XCTUnwrap(try SweepLock.attempt(results.stepLockURL(4), purpose: "measuring step 4"))
        expectSweepError(.conflictingResults, option: .output,
                         saying: "is held by pid \(getpid()) on host \(ProcessInfo.processInfo.hostName), since ") {
            _ = try SweepRunner(options: options).run()
        }
        XCTAssertNil(try SweepLock.attempt(results.stepLockURL(4), purpose: "a second lock"), "flock excludes a second open file")
        XCTAssertEqual(SweepLock.holder(of: results.stepLockURL(4))?.purpose, "measuring step 4")
        XCTAssertEqual(results.activeHolders().map(\.pid), [getpid()])
        expectSweepError(.conflictingResults, option: nil, saying: "lock is held by pid \(getpid())") {
            _ = try SweepMerge.merge(sources: [results.directory], into: results.directory)
        }
        held.release()
        let summary = try SweepRunner(options: options).run()
        XCTAssertEqual(summary.processedSteps.sorted(), [4], "step 0 was done before the refusal; step 4 once the lock is free")

        // The CKA reference activations' lock, likewise.
        var cka = options
        cka.probes = [.cka]
        let reference = try XCTUnwrap(try SweepLock.attempt(results.referenceLockURL, purpose: "building the CKA reference activations"))
        expectSweepError(.conflictingResults, option: .output, saying: "(building the CKA reference activations)") { _ = try SweepRunner(options: cka).run() }
        reference.release()
        XCTAssertEqual(try SweepRunner(options: cka).run().processedSteps, [4, 0], "the reference (the last step) first")
    }

    func testLockOfAKilledHolderDoesNotBlock() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("killedlock")
        defer { try? FileManager.default.removeItem(at: root) }
        var options = SweepFixture.options(output: root.appendingPathComponent("out"), probes: [.weights])
        options.steps = "0"
        options.data = nil
        let results = SweepResults(directory: options.output.standardizedFileURL)
        let url = results.stepLockURL(0)
        // Another process takes the lock (util-linux flock(1)), leaves a holder line, and is killed with SIGKILL.
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try "host=elsewhere pid=1 started=2026-01-01T00:00:00Z purpose=measuring step 0\n".write(to: url, atomically: false, encoding: .utf8)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["--no-fork", url.path, "sleep", "600"]
        try holder.run()
        let deadline = Date().addingTimeInterval(10)
        while try SweepLock.attempt(url, purpose: "probe").map({ $0.release(); return true }) == true, Date() < deadline { usleep(10_000) }
        XCTAssertNil(try SweepLock.attempt(url, purpose: "probe"), "flock(1) holds the lock")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        options.waitForLocks = false
        XCTAssertEqual(try SweepRunner(options: options).run().processedSteps, [0], "the killed holder's lock file does not block")
    }
}
