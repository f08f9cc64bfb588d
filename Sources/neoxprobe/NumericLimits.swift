import ArgumentParser

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
