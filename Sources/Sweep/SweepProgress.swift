import Dispatch
import Evaluation
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress of a sweep on standard error: a bar redrawn in place (`\r`) when standard error is a
/// terminal, plain lines otherwise (so logs and CI output stay readable).
public final class SweepProgress {
    public let enabled: Bool
    public let bar: Bool
    private var barVisible = false
    private var completedSeconds: [Double] = []

    public init(enabled: Bool, bar: Bool? = nil) {
        self.enabled = enabled
        self.bar = bar ?? (isatty(2) != 0)
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// A log line (a warning, a skip notice); clears the bar first so they do not interleave.
    public func note(_ text: String) {
        guard enabled else { return }
        if barVisible { write("\r\u{1B}[K"); barVisible = false }
        write(text + "\n")
    }

    /// Redraws the bar for checkpoint `index` (1-based) of `total`.
    /// - Parameters:
    ///   - fraction: how far this checkpoint is (0…1).
    ///   - tokensPerSecond: forward throughput so far on this checkpoint (nil before any).
    public func update(index: Int, total: Int, step: Int, stage: String, fraction: Double, tokensPerSecond: Double?) {
        guard enabled, bar else { return }
        let width = 24
        let overall = min(1, (Double(index - 1) + min(1, max(0, fraction))) / Double(max(total, 1)))
        let filled = Int((overall * Double(width)).rounded(.down))
        var line = "\r\u{1B}[K[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
        line += "checkpoint \(index)/\(total) step \(step) \(stage)"
        if let tokensPerSecond { line += "  \(Self.count(tokensPerSecond)) tok/s" }
        if let eta = eta(remainingAfterCurrent: total - index, fraction: fraction) { line += "  ETA \(Self.duration(eta))" }
        write(line)
        barVisible = true
    }

    /// Records a finished checkpoint and, without a bar, prints its line.
    public func finished(index: Int, total: Int, step: Int, seconds: Double, tokensPerSecond: Double?, what: String) {
        completedSeconds.append(seconds)
        guard enabled else { return }
        var line = "sweep: [\(index)/\(total)] step \(step): \(what) in \(String(format: "%.2f", seconds)) s"
        if let tokensPerSecond { line += " (\(Self.count(tokensPerSecond)) tok/s)" }
        if let eta = eta(remainingAfterCurrent: total - index, fraction: 1), total > index { line += ", ETA \(Self.duration(eta))" }
        if bar {
            update(index: index, total: total, step: step, stage: "done", fraction: 1, tokensPerSecond: tokensPerSecond)
            note(line)
        } else {
            write(line + "\n")
        }
    }

    public func end() {
        guard enabled, barVisible else { return }
        write("\r\u{1B}[K")
        barVisible = false
    }

    /// Remaining time from the mean duration of the checkpoints finished so far.
    private func eta(remainingAfterCurrent: Int, fraction: Double) -> Double? {
        guard !completedSeconds.isEmpty else { return nil }
        let mean = completedSeconds.reduce(0, +) / Double(completedSeconds.count)
        return mean * (Double(remainingAfterCurrent) + max(0, 1 - fraction))
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    static func count(_ value: Double) -> String {
        value >= 1e6 ? String(format: "%.2fM", value / 1e6) : value >= 1e4 ? String(format: "%.1fk", value / 1e3) : String(format: "%.0f", value)
    }
}

/// One checkpoint's progress: its place in the run, and the forward throughput so far, which the
/// later stages of the same checkpoint keep showing.
struct CheckpointProgress {
    let reporter: SweepProgress
    /// 1-based position among the run's checkpoints.
    let index: Int
    let total: Int
    let step: Int
    private(set) var tokensPerSecond: Double? = nil

    init(_ reporter: SweepProgress, index: Int, total: Int, step: Int) {
        self.reporter = reporter
        self.index = index
        self.total = total
        self.step = step
    }

    func update(_ stage: String, fraction: Double) {
        reporter.update(index: index, total: total, step: step, stage: stage, fraction: fraction, tokensPerSecond: tokensPerSecond)
    }

    /// `tokens` of `totalTokens` have run forward since `start`: the forward pass is the first 80% of a checkpoint.
    mutating func forward(tokens: Int, of totalTokens: Int, since start: DispatchTime) {
        let seconds = WallClock.seconds(since: start)
        tokensPerSecond = seconds > 0 ? Double(tokens) / seconds : nil
        update("forward", fraction: Double(tokens) / Double(max(totalTokens, 1)) * 0.8)
    }

    func finished(since start: DispatchTime, what: String) {
        reporter.finished(index: index, total: total, step: step, seconds: WallClock.seconds(since: start),
                          tokensPerSecond: tokensPerSecond, what: what)
    }
}
