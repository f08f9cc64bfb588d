import Foundation
import TestSupport
import XCTest

/// `neoxprobe fetch`, `audit` and `sweep --fetch` end to end against the local Hub.
final class HubCommandTests: XCTestCase {
    let repo = HubServer.repository
    static let data = RepositoryPaths.shared.appendingPathComponent("data/minipile/document").path
    /// A small, quick sweep whose CKA reference (the last step) goes first.
    static let sweepArguments = ["--data", data, "--rows", "0:2", "--seq-len", "64", "--probes", "outliers,cka,perplexity", "--quiet"]

    func run(_ arguments: [String], _ environment: [String: String]) throws -> CommandRunner.Outcome {
        try CommandRunner.run(arguments, environment: environment)
    }

    func testFetchThenAuditFromTheCommandLine() throws {
        let server = try HubServer(self, arguments: ["--alias", "step512=step2000"])
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        let environment = server.environment(cache: cache)
        let fetched = try run(["fetch", repo, "--revisions", "step0,step512,step1000", "--json", "--jobs", "2"], environment)
        XCTAssertEqual(fetched.status, 0, fetched.standardError)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: fetched.standardOutput) as? [String: Any])
        let revisions = try XCTUnwrap(object["revisions"] as? [[String: Any]])
        XCTAssertEqual(revisions.map { $0["revision"] as? String }, ["step0", "step512", "step1000"])
        XCTAssertFalse(fetched.standardError.contains("\r"), "no progress bar when stderr is not a terminal")

        let audit = try run(["audit", repo, "--json"], environment)
        XCTAssertEqual(audit.status, 0, audit.standardError)
        let table = try XCTUnwrap(JSONSerialization.jsonObject(with: audit.standardOutput) as? [String: Any])
        XCTAssertEqual(table["identical"] as? [String], ["main", "step512", "step2000"])
        XCTAssertEqual(table["out_of_order"] as? [String], ["step512"])
        let text = try run(["audit", repo], environment)
        XCTAssertTrue(text.output.contains("weights identical to main,step2000") && text.output.contains("farther from step0 than later step1000"), text.output)

        // Offline, the audit reads the cache alone.
        try server.control("reset=1")
        let offline = try run(["audit", repo, "--json"], environment.merging(["HF_HUB_OFFLINE": "1"]) { $1 })
        XCTAssertEqual(offline.status, 0, offline.standardError)
        XCTAssertEqual(try server.log().count, 0)
    }

    func testFetchErrorsAreOneClearLine() throws {
        let server = try HubServer(self)
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        let environment = server.environment(cache: cache)
        func assertFails(_ outcome: CommandRunner.Outcome, _ needles: [String], line: UInt = #line) {
            XCTAssertEqual(outcome.status, 1, outcome.standardError, line: line)
            XCTAssertTrue(outcome.standardError.hasPrefix("Error: "), outcome.standardError, line: line)
            for needle in needles { XCTAssertTrue(outcome.standardError.contains(needle), "\(needle): \(outcome.standardError)", line: line) }
        }
        assertFails(try run(["fetch", repo, "--revisions", "step7"], environment), ["step7", "has no revision"])
        assertFails(try run(["fetch", repo, "--revisions", "step0", "--files", "tokenizer.json"], environment), ["tokenizer.json", "step0"])
        try server.control("fault=gated&token=t")
        assertFails(try run(["fetch", repo, "--revisions", "step0"], environment), ["gated", "HF_TOKEN"])
        try server.control("reset=1")
        try server.control("fault=wronghash&match=/cdn/")
        assertFails(try run(["fetch", repo, "--revisions", "step4"], environment), ["sha256", "step4", "model.safetensors"])
        assertFails(try run(["fetch", repo, "--revisions", "step0"], environment.merging(["HF_ENDPOINT": "http://127.0.0.1:9"]) { $1 }),
                    ["cannot connect", "http://127.0.0.1:9"])
        let usage = try run(["fetch", repo, "--jobs", "0"], environment)
        XCTAssertEqual(usage.status, 64, usage.standardError)
    }

    /// The on-disk sweep of the same suite, for comparison.
    func onDiskMetrics(_ scratch: URL) throws -> Data {
        let out = scratch.appendingPathComponent("on-disk")
        let outcome = try CommandRunner.run(["sweep", "--suite", HubServer.suite.path, "--out", out.path] + Self.sweepArguments)
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        return try Data(contentsOf: out.appendingPathComponent("metrics.csv"))
    }

    /// Checkpoints with weight bytes in the cache (complete or downloading), sampled while `process` runs.
    func watchCheckpoints(_ cache: URL, while process: Process) -> Int {
        let folder = cache.appendingPathComponent("models--EleutherAI--pythia-mini")
        var most = 0
        while process.isRunning {
            most = max(most, Self.checkpointsOnDisk(folder))
            usleep(5_000)
        }
        return max(most, Self.checkpointsOnDisk(folder))
    }

    /// Weight blobs count per checkpoint (a sharded checkpoint's shards are one checkpoint).
    static func checkpointsOnDisk(_ folder: URL) -> Int {
        let blobs = (try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("blobs").path)) ?? []
        // Weight blobs are named by sha256 (64 hex digits); the two shards of step2000 are one checkpoint.
        let shardBlobs: Set<String> = ["1e4b8f78bed36ac312225295d0533378a4b88e4becd28339f6c159a9750aadd2",
                                       "449490215cae0ff33589d78273af9beacc931fcbb28036f05f5a424c4c975daa"]
        let weights = Set(blobs.map { $0.replacingOccurrences(of: ".incomplete", with: "") }.filter { $0.count == 64 })
        return weights.subtracting(shardBlobs).count + (weights.isDisjoint(with: shardBlobs) ? 0 : 1)
    }

    func testFetchSweepHoldsAtMostKeepPlusOneCheckpointsAndMatchesTheOnDiskSweep() throws {
        let server = try HubServer(self)
        let scratch = try scratchDirectory(self)
        let cache = scratch.appendingPathComponent("hub")
        let environment = server.environment(cache: cache)
        let expected = try onDiskMetrics(scratch)
        for keep in ["0", "1"] {
            let out = scratch.appendingPathComponent("fetched-\(keep)")
            let process = try CommandRunner.start(["sweep", "--suite", repo, "--fetch", "--keep-checkpoints", keep, "--out", out.path]
                + Self.sweepArguments, environment: environment)
            let most = watchCheckpoints(cache, while: process)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
            print("sweep --fetch --keep-checkpoints \(keep): at most \(most) checkpoints on disk")
            // keep measured + the one being measured + the one downloading ahead.
            XCTAssertLessThanOrEqual(most, Int(keep)! + 2, "at most --keep-checkpoints + 1 checkpoints (+ the one downloading) on disk")
            XCTAssertGreaterThanOrEqual(most, 1)
            XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("metrics.csv")), expected, "the same bytes as the on-disk sweep")
            let run = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("run.json"))) as? [String: Any])
            let audit = try XCTUnwrap(run["audit"] as? [String: Any])
            XCTAssertEqual((audit["revisions"] as? [Any])?.count, 8)
            XCTAssertEqual(audit["identical"] as? [String], [])
            // Everything it fetched is gone again, but the keep most recent.
            XCTAssertEqual(Self.checkpointsOnDisk(cache.appendingPathComponent("models--EleutherAI--pythia-mini")), Int(keep)!)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent(".fetched.json").path) && keep == "0")
        }
    }

    func testFetchSweepNeverRemovesWhatWasInTheCacheBefore() throws {
        let server = try HubServer(self)
        let scratch = try scratchDirectory(self)
        let cache = scratch.appendingPathComponent("hub")
        let environment = server.environment(cache: cache)
        let before = try run(["fetch", repo, "--revisions", "step16,step2000"], environment)
        XCTAssertEqual(before.status, 0, before.standardError)
        let out = scratch.appendingPathComponent("fetched")
        let sweep = try run(["sweep", "--suite", repo, "--fetch", "--out", out.path] + Self.sweepArguments, environment)
        XCTAssertEqual(sweep.status, 0, sweep.standardError)
        let folder = cache.appendingPathComponent("models--EleutherAI--pythia-mini")
        XCTAssertEqual(Self.checkpointsOnDisk(folder), 2, "step16 and step2000 were there before and stay")
        let located = try CommandRunner.run(["run", "--model", "\(repo)@step16", "--tokens", "1 2 3", "--hooks", "logits", "--out", scratch.appendingPathComponent("a.safetensors").path],
                                            environment: environment)
        XCTAssertEqual(located.status, 0, located.standardError)
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("metrics.csv")), try onDiskMetrics(scratch))

        // A sweep of the cached repository (no --fetch, offline) records the audit from the cache.
        let cached = scratch.appendingPathComponent("cached")
        let offline = try run(["sweep", "--suite", repo, "--out", cached.path] + Self.sweepArguments, environment.merging(["HF_HUB_OFFLINE": "1"]) { $1 })
        XCTAssertEqual(offline.status, 0, offline.standardError)
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: cached.appendingPathComponent("run.json"))) as? [String: Any])
        let audit = try XCTUnwrap(record["audit"] as? [String: Any])
        XCTAssertEqual((audit["revisions"] as? [[String: Any]])?.compactMap { $0["revision"] as? String }, ["step16", "step2000"])
        let missing = try run(["run", "--model", "\(repo)@step4", "--tokens", "1 2 3", "--hooks", "logits", "--out", scratch.appendingPathComponent("b.safetensors").path],
                              environment)
        XCTAssertTrue(missing.standardError.contains("neoxprobe fetch EleutherAI/pythia-mini --revisions step4"), missing.standardError)
    }

    func testFetchSweepResumesAfterKillMidDownload() throws {
        let server = try HubServer(self)
        let scratch = try scratchDirectory(self)
        let cache = scratch.appendingPathComponent("hub")
        let environment = server.environment(cache: cache)
        let out = scratch.appendingPathComponent("fetched")
        // A slow network (2 MB/s) for the weights, so the kill lands mid-body.
        try server.control("fault=throttle&match=/cdn/&bytes=2000000")
        let process = try CommandRunner.start(["sweep", "--suite", repo, "--fetch", "--out", out.path] + Self.sweepArguments, environment: environment)
        let blobs = cache.appendingPathComponent("models--EleutherAI--pythia-mini/blobs")
        var partial: (name: String, size: Int)?
        let deadline = Date().addingTimeInterval(60)
        while partial == nil && Date() < deadline && process.isRunning {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: blobs.path)) ?? [] where name.hasSuffix(".incomplete") {
                let size = (try? FileManager.default.attributesOfItem(atPath: blobs.appendingPathComponent(name).path)[.size] as? Int) ?? 0
                if size > 1_000_000 { partial = (name, size) }
            }
            usleep(20_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let cut = try XCTUnwrap(partial, "a download was in progress")
        try server.control("reset=1")
        let resumed = try run(["sweep", "--suite", repo, "--fetch", "--out", out.path] + Self.sweepArguments, environment)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        let ranges = try server.log().compactMap(\.range)
        XCTAssertTrue(ranges.contains { range in
            guard let start = Int(range.dropFirst("bytes=".count).dropLast()) else { return false }
            return start >= cut.size
        }, "the .incomplete file was resumed with a Range request: \(ranges)")
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("metrics.csv")), try onDiskMetrics(scratch))
        XCTAssertEqual(Self.checkpointsOnDisk(cache.appendingPathComponent("models--EleutherAI--pythia-mini")), 0)
    }

    func testFetchSweepResumesAfterKillMidMeasurement() throws {
        let server = try HubServer(self)
        let scratch = try scratchDirectory(self)
        let cache = scratch.appendingPathComponent("hub")
        let environment = server.environment(cache: cache)
        let out = scratch.appendingPathComponent("fetched")
        // Slow enough (5 MB/s) that the sweep is still going when two checkpoints are recorded.
        try server.control("fault=throttle&match=/cdn/&bytes=5000000")
        let process = try CommandRunner.start(["sweep", "--suite", repo, "--fetch", "--out", out.path] + Self.sweepArguments, environment: environment)
        let steps = out.appendingPathComponent("steps")
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning {
            let done = ((try? FileManager.default.contentsOfDirectory(atPath: steps.path)) ?? [])
                .filter { FileManager.default.fileExists(atPath: steps.appendingPathComponent("\($0)/outliers.csv").path) }
            if done.count >= 2 { break }
            usleep(20_000)
        }
        XCTAssertTrue(process.isRunning, "the sweep was killed mid-way, not after it ended")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try server.control("reset=1")
        let resumed = try run(["sweep", "--suite", repo, "--fetch", "--out", out.path] + Self.sweepArguments, environment)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertTrue(resumed.output.contains("already complete") && !resumed.output.contains(" 0 already complete"), resumed.output)
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("metrics.csv")), try onDiskMetrics(scratch))
        XCTAssertEqual(Self.checkpointsOnDisk(cache.appendingPathComponent("models--EleutherAI--pythia-mini")), 0,
                       "what the killed run fetched is removed by the run that finished")
    }

    func testHelpDocumentsTheHubCommands() throws {
        for (subcommand, flags) in [("fetch", ["--revisions", "--files", "--jobs", "--json", "HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE"]),
                                    ("audit", ["--revisions", "--json", "--no-load"]), ("sweep", ["--fetch", "--keep-checkpoints"])] {
            let outcome = try CommandRunner.run([subcommand, "--help"])
            XCTAssertEqual(outcome.status, 0, outcome.standardError)
            for flag in flags { XCTAssertTrue(outcome.output.contains(flag), "\(subcommand) --help lacks \(flag):\n\(outcome.output)") }
        }
        let usage = try CommandRunner.run(["sweep", "--suite", repo, "--keep-checkpoints", "2", "--out", "/nonexistent"])
        XCTAssertEqual(usage.status, 64, "--keep-checkpoints without --fetch is an argument error: \(usage.standardError)")
    }
}
