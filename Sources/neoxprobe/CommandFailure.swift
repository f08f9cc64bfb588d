import ArgumentParser
import Evaluation

/// A problem with the data or files a command was given (a missing file, a token file that is
/// not ids, a value the data rules out), reported as `Error: <description>`.
///
/// ArgumentParser prints the usage block only for `ValidationError`, which is for arguments that
/// are wrong whatever the data; every other error, this one and the libraries' own
/// (`FormatError`, `NeoXError`, `CorpusError`, `TokenizerError`, `EvalError`, `SweepError`,
/// `ResultsError`), is printed as its description alone, with a non-zero exit.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }

    /// An evaluator error in the command line's terms: prefixed with the flag behind the setting
    /// it is about (the library names its settings, never the flags).
    init(_ error: EvalError, flags: [EvalError.Setting: String]) {
        if let setting = error.setting, let flag = flags[setting] {
            description = "\(flag): \(error.message)"
        } else {
            description = error.message
        }
    }
}

/// Limits on numeric flags that would otherwise reach arithmetic that traps on overflow or an
/// allocation that cannot succeed; such values must be a clear error, never a crash.
enum NumericLimits {
    /// The most rows a training step may consume. A step's batch is materialised as row indices
    /// (and in a sweep as token rows), so the size must stay allocatable; 2^20 is 1024 times
    /// Pythia's 1024.
    static let maxBatchSize = 1 << 20

    /// Checks `--batch-size` and that the step's last sample, (step + 1) × batch size, is a
    /// representable index.
    static func checkBatch(step: Int?, batchSize: Int, stepFlag: String) throws {
        guard batchSize >= 1, batchSize <= maxBatchSize else {
            throw ValidationError("--batch-size must be between 1 and \(maxBatchSize), got \(batchSize)")
        }
        guard let step else { return }
        guard step >= 0 else { throw ValidationError("\(stepFlag) must be 0 or more, got \(step)") }
        let (next, overflow) = step.addingReportingOverflow(1)
        guard !overflow, !next.multipliedReportingOverflow(by: batchSize).overflow else {
            throw ValidationError("\(stepFlag) \(step) with --batch-size \(batchSize) is past any dataset (sample index (step + 1) × batch size overflows)")
        }
    }
}
