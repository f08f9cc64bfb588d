import Foundation

/// One progress line for a fetch (bytes, rate, ETA), redrawn in place on standard error, and only
/// when standard error is a terminal: logs and pipes get no carriage-return noise.
public final class HubProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int64
    private let fileCount: Int
    private let label: String
    private let enabled: Bool
    private var done: Int64 = 0
    private var filesDone = 0
    private var lastDraw = Date.distantPast
    private let started = Date()

    /// `total`: bytes expected to transfer; `enabled` nil means "when stderr is a terminal".
    public init(label: String, total: Int64, files: Int, enabled: Bool? = nil) {
        self.label = label
        self.total = total
        self.fileCount = files
        self.enabled = enabled ?? (isatty(STDERR_FILENO) == 1)
    }

    func add(_ bytes: Int64) {
        lock.withLock {
            done += bytes
            drawIfDue()
        }
    }

    func fileDone() {
        lock.withLock {
            filesDone += 1
            drawIfDue(force: true)
        }
    }

    /// Ends the line (a newline after the last redraw).
    public func finish() {
        lock.withLock {
            guard enabled, lastDraw != .distantPast else { return }
            draw()
            FileHandle.standardError.write(Data("\n".utf8))
        }
    }

    private func drawIfDue(force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.2 else { return }
        lastDraw = now
        draw()
    }

    private func draw() {
        let elapsed = max(Date().timeIntervalSince(started), 1e-3)
        let rate = Double(done) / elapsed
        let remaining = max(total - done, 0)
        let eta = rate > 0 ? Self.duration(Double(remaining) / rate) : "?"
        let line = "\r\(label): \(Self.bytes(done)) / \(Self.bytes(total))  \(Self.bytes(Int64(rate)))/s  ETA \(eta)  (\(filesDone)/\(fileCount) files)\u{1B}[K"
        FileHandle.standardError.write(Data(line.utf8))
    }

    public static func bytes(_ n: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(n), unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s < 60 ? "\(s)s" : s < 3600 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s / 3600)h\(String(format: "%02d", s / 60 % 60))m"
    }
}
