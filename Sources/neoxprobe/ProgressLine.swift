import Foundation
import Synchronization

/// A one-line progress display on standard error for the long commands (`lambada`,
/// `perplexity`, `run`): shown when standard error is a terminal, or always with `--progress`; results
/// on standard output are never mixed with it. On a terminal the line is redrawn in place; else
/// (a log file) a line is written at most every 10 s.
final class ProgressLine: Sendable {
    private struct State {
        var tokens = 0
        var lastDraw = 0.0
    }

    private let label: String
    private let unit: String
    private let total: Int?
    private let terminal: Bool
    private let start = Date()
    private let state = Mutex(State())

    /// nil when progress is not wanted (not a terminal and no `--progress`).
    static func make(_ label: String, total: Int? = nil, unit: String = "input tokens scored", forced: Bool) -> ProgressLine? {
        let terminal = isatty(STDERR_FILENO) == 1
        guard terminal || forced else { return nil }
        return ProgressLine(label: label, unit: unit, total: total, terminal: terminal)
    }

    private init(label: String, unit: String, total: Int?, terminal: Bool) {
        self.label = label
        self.unit = unit
        self.total = total
        self.terminal = terminal
    }

    /// Adds `tokens` scored input tokens.
    func advance(_ tokens: Int) {
        let line: String? = state.withLock { state in
            state.tokens += tokens
            let now = Date().timeIntervalSince(start)
            guard now - state.lastDraw >= (terminal ? 0.2 : 10) || state.tokens == total else { return nil }
            state.lastDraw = now
            return describe(state.tokens, seconds: now)
        }
        if let line { write(line) }
    }

    /// Ends the display (a final line, and a newline on a terminal).
    func finish() {
        let tokens = state.withLock { $0.tokens }
        write(describe(tokens, seconds: Date().timeIntervalSince(start)) + " done")
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func describe(_ tokens: Int, seconds: Double) -> String {
        let rate = seconds > 0 ? Int(Double(tokens) / seconds) : 0
        let of = total.map { " of \($0) (\(Int(100 * Double(tokens) / Double(max(1, $0))))%)" } ?? ""
        return "\(label): \(tokens)\(of) \(unit), \(rate) tokens/s, \(Int(seconds)) s"
    }

    private func write(_ line: String) {
        FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
    }
}
