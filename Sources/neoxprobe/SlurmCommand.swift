import ArgumentParser
import Formats
import Foundation
import Sweep

/// `neoxprobe slurm`: writes (and optionally submits) an sbatch job array that runs a sweep as
/// `--shards` tasks, one share of the steps each (`sweep --shard slurm`), all writing into one
/// results directory, and a merge job that runs after every task succeeded.
struct SlurmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm",
        abstract: "Write an sbatch job array that runs a sweep as N shards, and a dependent merge job.",
        discussion: """
        Everything after -- is a `neoxprobe sweep` command line (without --shard), checked here first. Writes \
        DIR/sweep.sbatch (--array=0-(N-1); task i runs `sweep --shard slurm`, SLURM_ARRAY_TASK_ID of \
        SLURM_ARRAY_TASK_COUNT) and DIR/merge.sbatch (`neoxprobe merge RESULTS --out RESULTS`), DIR being \
        --script-dir (default RESULTS.slurm). The tasks share the results directory (a file system with flock: \
        local, NFSv4, Lustre mounted with -o flock): each checkpoint is locked while it is measured, and the CKA \
        reference activations are built once, by the first task to take their lock, while the others wait for \
        them. --cpus-per-task and --mem default from the model's size (see --help of the options). With \
        --submit, both are submitted (the merge with --dependency=afterok:<array job id>); otherwise the two \
        sbatch commands to type are printed.

          neoxprobe slurm --shards 8 --submit -- --suite EleutherAI/pythia-160m --data DATA --batch-of-step 142999 --out results
        """)

    @Option(name: .long, help: "Tasks of the job array (shards of the steps).")
    var shards: Int

    @Option(name: .long, help: "Where the scripts and logs go (default: RESULTS.slurm beside the results directory).")
    var scriptDir: String?

    @Option(name: .long, help: "CPUs per task (default: from the model size, 2 per 100M parameters, 2 to 32).")
    var cpusPerTask: Int?

    @Option(name: .long, help: "Memory per task in GiB (default: from the model size, 3 × 4 bytes a parameter + 2 GiB).")
    var memGib: Int?

    @Option(name: .long, help: "sbatch --time of each task (e.g. 12:00:00).")
    var time: String?

    @Option(name: .long, help: "sbatch --partition.")
    var partition: String?

    @Option(name: .long, help: "sbatch --account.")
    var account: String?

    @Option(name: .long, help: "The neoxprobe executable the jobs run (default: this one).")
    var executable: String?

    @Flag(name: .long, help: "Submit both jobs with sbatch (the merge depends on the array: afterok).")
    var submit = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The sweep's arguments, after --.", valueName: "sweep-arguments"))
    var sweepArguments: [String] = []

    func validate() throws {
        guard (1...SweepShard.maxCount).contains(shards) else { throw ValidationError("--shards must be between 1 and \(SweepShard.maxCount), got \(shards)") }
        if let cpusPerTask, !(1...4096).contains(cpusPerTask) { throw ValidationError("--cpus-per-task must be between 1 and 4096, got \(cpusPerTask)") }
        if let memGib, !(1...1 << 20).contains(memGib) { throw ValidationError("--mem-gib must be between 1 and \(1 << 20), got \(memGib)") }
        guard !sweepArguments.isEmpty else { throw ValidationError("give the sweep's arguments after --, e.g. -- --suite DIR --data PREFIX --out results") }
        if sweepArguments.contains(where: { $0 == "--shard" || $0.hasPrefix("--shard=") }) {
            throw ValidationError("the sweep arguments must not contain --shard: each task of the array gets its own")
        }
    }

    func run() throws {
        let sweep: SweepCommand
        do { sweep = try SweepCommand.parse(sweepArguments) } catch {
            throw CommandFailure("the sweep arguments after --: \(SweepCommand.message(for: error))")
        }
        let results = URL(fileURLWithPath: sweep.out).standardizedFileURL
        let resources = try Self.resources(suite: sweep.suite, steps: sweep.steps.description)
        let cpus = cpusPerTask ?? resources.cpus
        let memory = memGib ?? resources.memoryGiB
        let tasks = min(shards, resources.stepCount)
        if tasks < shards {
            FileHandle.standardError.write(Data("slurm: \(shards) shards for \(resources.stepCount) steps: using \(tasks) tasks\n".utf8))
        }
        let directory = URL(fileURLWithPath: scriptDir ?? results.path + ".slurm").standardizedFileURL
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("logs"), withIntermediateDirectories: true)
        let binary = executable.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? Self.currentExecutable()
        let workingDirectory = FileManager.default.currentDirectoryPath

        var header = ["#!/bin/bash"]
        func directives(name: String, log: String, cpus: Int, memory: Int) -> [String] {
            var lines = ["#SBATCH --job-name=\(name)", "#SBATCH --nodes=1", "#SBATCH --ntasks=1",
                         "#SBATCH --cpus-per-task=\(cpus)", "#SBATCH --mem=\(memory)G",
                         "#SBATCH --output=\(directory.appendingPathComponent("logs").path)/\(log)"]
            if let time { lines.append("#SBATCH --time=\(time)") }
            if let partition { lines.append("#SBATCH --partition=\(partition)") }
            if let account { lines.append("#SBATCH --account=\(account)") }
            return lines
        }
        header.append("# Written by neoxprobe slurm: \(tasks) shards of a sweep of \(resources.stepCount) checkpoints "
            + "(\(resources.parameters) parameters each) into \(results.path).")
        let sweepScript = header + ["#SBATCH --array=0-\(tasks - 1)"]
            + directives(name: "neoxprobe-sweep", log: "sweep-%A_%a.out", cpus: cpus, memory: memory) + [
                "set -euo pipefail",
                "export OPENBLAS_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-\(cpus)}\"",
                "cd \(Self.quoted(workingDirectory))",
                "# Share SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT, balanced by checkpoint size.",
                "exec \(Self.quoted(binary)) sweep --shard slurm " + sweepArguments.map(Self.quoted).joined(separator: " "),
            ]
        let mergeScript = ["#!/bin/bash", "# Written by neoxprobe slurm: runs after every task of the sweep array succeeded."]
            + directives(name: "neoxprobe-merge", log: "merge-%j.out", cpus: 1, memory: 2) + [
                "set -euo pipefail",
                "cd \(Self.quoted(workingDirectory))",
                "exec \(Self.quoted(binary)) merge \(Self.quoted(results.path)) --out \(Self.quoted(results.path))",
            ]
        let sweepURL = directory.appendingPathComponent("sweep.sbatch"), mergeURL = directory.appendingPathComponent("merge.sbatch")
        try AtomicFile.write(sweepScript.joined(separator: "\n") + "\n", to: sweepURL)
        try AtomicFile.write(mergeScript.joined(separator: "\n") + "\n", to: mergeURL)
        print("slurm: wrote \(sweepURL.path) (\(tasks) tasks, \(cpus) CPUs and \(memory) GiB each) and \(mergeURL.path)")
        guard submit else {
            print("submit with:")
            print("  jobid=$(sbatch --parsable \(Self.quoted(sweepURL.path)))")
            print("  sbatch --dependency=afterok:${jobid%%;*} \(Self.quoted(mergeURL.path))")
            return
        }
        let arrayJob = try Self.sbatch([sweepURL.path])
        let mergeJob = try Self.sbatch(["--dependency=afterok:\(arrayJob)", mergeURL.path])
        print("slurm: submitted sweep array job \(arrayJob) and merge job \(mergeJob) (afterok:\(arrayJob))")
    }

    /// CPUs and memory a task needs for checkpoints of this suite: it holds two checkpoints' fp32
    /// weights at once (the next loads while the current is measured) plus the forward pass's working
    /// buffers; 3 × 4 bytes a parameter and 2 GiB for buffers and the runtime cover both.
    static func resources(suite spec: String, steps: String) throws -> (parameters: Int, stepCount: Int, cpus: Int, memoryGiB: Int) {
        do {
            let suite = try SweepSuite(spec: spec)
            let selected = try suite.select(steps)
            let checkpoint = try Checkpoint(directory: selected[0].directory)
            let parameters = checkpoint.entries.values.reduce(0) { $0 + $1.elementCount }
            let cpus = min(32, max(2, 2 * ((parameters + 99_999_999) / 100_000_000)))
            let memory = 2 + (3 * 4 * parameters + (1 << 30) - 1) / (1 << 30)
            return (parameters, selected.count, cpus, memory)
        } catch let error as SweepError {
            throw CommandFailure("the sweep arguments after --: \(SweepCommand.message(for: error))")
        }
    }

    /// This process's executable, absolute.
    static func currentExecutable() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }

    /// A word for bash: single-quoted unless it is plainly safe.
    static func quoted(_ word: String) -> String {
        let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+")
        if !word.isEmpty, word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Runs `sbatch --parsable ARGS` and returns the job id it prints.
    static func sbatch(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sbatch", "--parsable"] + arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch { throw CommandFailure("cannot run sbatch: \(error.localizedDescription)") }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let problem = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let id = text.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard process.terminationStatus == 0, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw CommandFailure("sbatch \(arguments.joined(separator: " ")) failed (exit \(process.terminationStatus)): "
                + problem.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return id
    }
}
