import Formats
import Foundation
import TestSupport
import XCTest

/// `neoxprobe slurm` writes a job array and a merge job; their bodies, run here as Slurm would run
/// them (one task per SLURM_ARRAY_TASK_ID), give the single sweep's metrics.csv and run.json.
/// (Tests/Cluster/test_cluster.sh submits them to a real one-node Slurm cluster: `make test-cluster`.)
final class SlurmCLITests: XCTestCase {
    private func sweepArguments(_ output: URL) -> [String] {
        ["--suite", CLI.suite.path, "--steps", "0,16,2000", "--data", CLI.dataset.path, "--rows", "0:2", "--seq-len", "256",
         "--probes", "outliers,cka,weights", "--out", output.path, "--quiet"]
    }

    func testScriptsRunAsAnArrayGiveTheSingleSweepsBytes() throws {
        try CLI.requireShared()
        let root = try CLI.temporaryDirectory(self)
        let results = root.appendingPathComponent("results"), scripts = root.appendingPathComponent("jobs")
        let outcome = try CLI.run(["slurm", "--shards", "3", "--script-dir", scripts.path, "--time", "01:00:00", "--"] + sweepArguments(results))
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        XCTAssertTrue(outcome.output.contains("sbatch --dependency=afterok:"), outcome.output)

        // Resources from the model's size: 2 CPUs per 100M parameters (at least 2), 3 × 4 bytes a parameter + 2 GiB.
        let checkpoint = try Checkpoint(directory: CLI.suite.appendingPathComponent("step0"))
        let parameters = checkpoint.entries.values.reduce(0) { $0 + $1.elementCount }
        let memory = 2 + (12 * parameters + (1 << 30) - 1) / (1 << 30)
        let sweep = try String(contentsOf: scripts.appendingPathComponent("sweep.sbatch"), encoding: .utf8)
        for line in ["#SBATCH --array=0-2", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=\(memory)G", "#SBATCH --time=01:00:00",
                     "#SBATCH --output=\(scripts.path)/logs/sweep-%A_%a.out"] {
            XCTAssertTrue(sweep.contains(line + "\n"), "sweep.sbatch lacks \(line):\n\(sweep)")
        }
        XCTAssertTrue(sweep.contains(" sweep --shard slurm --suite \(CLI.suite.path) --steps 0,16,2000 "), sweep)
        let merge = try String(contentsOf: scripts.appendingPathComponent("merge.sbatch"), encoding: .utf8)
        XCTAssertTrue(merge.contains(" merge \(results.path) --out \(results.path)\n"), merge)

        // The array's tasks (two at once), then the merge, as Slurm runs them.
        func bash(_ script: String, task: Int? = nil) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [scripts.appendingPathComponent(script).path]
            var environment = ProcessInfo.processInfo.environment
            if let task {
                environment["SLURM_ARRAY_TASK_ID"] = String(task)
                environment["SLURM_ARRAY_TASK_COUNT"] = "3"
                environment["SLURM_ARRAY_TASK_MIN"] = "0"
            }
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            return process
        }
        for batch in [[0, 1], [2]] {
            let tasks = try batch.map { try bash("sweep.sbatch", task: $0) }
            for task in tasks { task.waitUntilExit(); XCTAssertEqual(task.terminationStatus, 0) }
        }
        let merging = try bash("merge.sbatch")
        merging.waitUntilExit()
        XCTAssertEqual(merging.terminationStatus, 0)

        let single = root.appendingPathComponent("single")
        let direct = try CLI.run(["sweep"] + sweepArguments(single))
        XCTAssertEqual(direct.status, 0, direct.standardError)
        for name in ["metrics.csv", "run.json"] {
            XCTAssertEqual(try Data(contentsOf: results.appendingPathComponent(name)), try Data(contentsOf: single.appendingPathComponent(name)),
                           "\(name) of the array differs from the single sweep's")
        }
    }

    func testBadArgumentsAreNamed() throws {
        try CLI.requireShared()
        let root = try CLI.temporaryDirectory(self)
        let out = root.appendingPathComponent("out")
        assertFails(try CLI.run(["slurm", "--shards", "0", "--"] + sweepArguments(out)), as: .argument, mentioning: ["--shards"])
        assertFails(try CLI.run(["slurm", "--shards", "2", "--"] + sweepArguments(out) + ["--shard", "0/2"]), as: .argument, mentioning: ["--shard"])
        assertFails(try CLI.run(["slurm", "--shards", "2"]), as: .argument, mentioning: ["after --"])
        assertFails(try CLI.run(["slurm", "--shards", "2", "--", "--suite", root.appendingPathComponent("nope").path, "--out", out.path]),
                    as: .data, mentioning: ["the sweep arguments after --", "--suite"])
        assertFails(try CLI.run(["sweep", "--shard", "3/3"] + sweepArguments(out)), as: .data, mentioning: ["--shard", "shard index 3 is outside 0..<3"])
        assertFails(try CLI.run(["sweep", "--shard", "slurm"] + sweepArguments(out)), as: .data, mentioning: ["--shard", "SLURM_ARRAY_TASK_ID"])
    }

    func testMergeOfAnIncompleteShardSaysWhatIsMissing() throws {
        try CLI.requireShared()
        let root = try CLI.temporaryDirectory(self)
        let shard = root.appendingPathComponent("shard0")
        XCTAssertEqual(try CLI.run(["sweep", "--shard", "0/3"] + sweepArguments(shard)).status, 0)
        let merged = root.appendingPathComponent("merged")
        assertFails(try CLI.run(["merge", shard.path, "--out", merged.path]), as: .data,
                    mentioning: ["results of the selection are missing", "step 16 outliers", "--allow-incomplete"])
        let allowed = try CLI.run(["merge", shard.path, "--out", merged.path, "--allow-incomplete"])
        XCTAssertEqual(allowed.status, 0, allowed.standardError)
        let run = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: merged.appendingPathComponent("run.json"))) as? [String: Any])
        XCTAssertEqual(run["status"] as? String, "running")
        assertFails(try CLI.run(["merge", root.appendingPathComponent("nothing").path, "--out", merged.path]), as: .data, mentioning: ["no run.json"])
    }
}
