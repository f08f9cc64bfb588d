import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive advisory lock on a file of the results directory, held with `flock(2)`.
///
/// `flock` is released by the kernel when the holding process exits, however it exits, so a
/// sweep killed with `kill -9` never leaves a lock that blocks the next run: the lock *file*
/// stays (it is never unlinked, which would let two processes lock two different inodes), but a
/// file nobody holds locked is free. After taking the lock the holder writes who it is (host,
/// pid, start time, what it does) into the file, so a process that finds it taken can say by whom.
///
/// Several sweeps (the shards of a Slurm job array, or two people) may share one results
/// directory: `RESULTS/.lock` guards the short rewrites of `run.json` and `metrics.csv`,
/// `RESULTS/.locks/reference.lock` the building of the CKA reference activations, and
/// `RESULTS/.locks/stepNNNNNN.lock` the measuring of one checkpoint.
final class SweepLock {
    /// Who holds a lock, as the holder wrote it.
    struct Holder: CustomStringConvertible, Equatable {
        var host: String
        var pid: Int32
        var started: String
        var purpose: String

        var description: String { "pid \(pid) on host \(host), since \(started) (\(purpose))" }

        /// `host=… pid=… started=… purpose=…` (purpose last: it may contain spaces).
        var line: String { "host=\(host) pid=\(pid) started=\(started) purpose=\(purpose)\n" }

        init(host: String, pid: Int32, started: String, purpose: String) {
            self.host = host
            self.pid = pid
            self.started = started
            self.purpose = purpose
        }

        init?(line: String) {
            var fields: [String: String] = [:]
            var rest = Substring(line.trimmingCharacters(in: .whitespacesAndNewlines))
            for key in ["host", "pid", "started"] {
                guard rest.hasPrefix(key + "="), let space = rest.firstIndex(of: " ") else { return nil }
                fields[key] = String(rest[rest.index(rest.startIndex, offsetBy: key.count + 1)..<space])
                rest = rest[rest.index(after: space)...]
            }
            guard rest.hasPrefix("purpose="), let pid = Int32(fields["pid"] ?? "") else { return nil }
            self.init(host: fields["host"]!, pid: pid, started: fields["started"]!, purpose: String(rest.dropFirst("purpose=".count)))
        }

        /// This process, now.
        static func current(purpose: String) -> Holder {
            let formatter = ISO8601DateFormatter()
            return Holder(host: ProcessInfo.processInfo.hostName, pid: getpid(), started: formatter.string(from: Date()), purpose: purpose)
        }
    }

    let url: URL
    private var descriptor: Int32

    private init(url: URL, descriptor: Int32) {
        self.url = url
        self.descriptor = descriptor
    }

    deinit { release() }

    /// Releases the lock (closing the file); safe to call more than once.
    func release() {
        guard descriptor >= 0 else { return }
        _ = flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    /// What the file says about its holder (nil when empty, unreadable, or not ours).
    static func holder(of url: URL) -> Holder? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        return Holder(line: String(decoding: data, as: UTF8.self))
    }

    /// Takes the lock when nobody holds it; nil when another process (or another open of the
    /// file in this one) does.
    static func attempt(_ url: URL, purpose: String) throws -> SweepLock? {
        let descriptor = try open(url)
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let error = errno
            close(descriptor)
            if error == EWOULDBLOCK { return nil }
            throw SweepError(.conflictingResults, "cannot lock \(url.path): \(String(cString: strerror(error)))")
        }
        return try SweepLock(url: url, descriptor: descriptor).recording(purpose)
    }

    /// Takes the lock, waiting for its holder when there is one: `waiting` is told who (once)
    /// before the wait; with `wait` false a held lock is an error naming the holder instead.
    static func acquire(_ url: URL, purpose: String, wait: Bool, waiting: (Holder?) -> Void) throws -> SweepLock {
        if let lock = try attempt(url, purpose: purpose) { return lock }
        let holder = Self.holder(of: url)
        guard wait else {
            throw SweepError(.conflictingResults, option: .output,
                             "\(url.path) is held by \(holder?.description ?? "another process (it wrote no holder line)"): "
                                 + "another sweep is using this results directory; not waiting for it")
        }
        waiting(holder)
        let descriptor = try open(url)
        while flock(descriptor, LOCK_EX) != 0 {
            let error = errno
            guard error == EINTR else {
                close(descriptor)
                throw SweepError(.conflictingResults, "cannot lock \(url.path): \(String(cString: strerror(error)))")
            }
        }
        return try SweepLock(url: url, descriptor: descriptor).recording(purpose)
    }

    private static func open(_ url: URL) throws -> Int32 {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let descriptor = Glibc.open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw SweepError(.conflictingResults, option: .output, "cannot open the lock file \(url.path): \(String(cString: strerror(errno)))")
        }
        return descriptor
    }

    /// Writes this process's holder line into the (now locked) file.
    private func recording(_ purpose: String) throws -> SweepLock {
        let bytes = Array(Holder.current(purpose: purpose).line.utf8)
        guard ftruncate(descriptor, 0) == 0, bytes.withUnsafeBytes({ pwrite(descriptor, $0.baseAddress, $0.count, 0) }) == bytes.count else {
            throw SweepError(.conflictingResults, option: .output, "cannot write the lock file \(url.path): \(String(cString: strerror(errno)))")
        }
        return self
    }
}

extension SweepResults {
    /// Guards rewrites of `run.json` and `metrics.csv` (and the options check before the first).
    var directoryLockURL: URL { directory.appendingPathComponent(".lock") }
    var locksDirectory: URL { directory.appendingPathComponent(".locks") }
    /// Guards building the CKA reference activations.
    var referenceLockURL: URL { locksDirectory.appendingPathComponent("reference.lock") }
    /// Guards measuring one checkpoint.
    func stepLockURL(_ step: Int) -> URL { locksDirectory.appendingPathComponent(SweepRunner.stepFolder(step) + ".lock") }

    /// Runs `body` holding the directory lock (always waited for: it is held for a file rewrite only).
    func withDirectoryLock<R>(_ body: () throws -> R) throws -> R {
        let lock = try SweepLock.acquire(directoryLockURL, purpose: "rewriting run.json and metrics.csv", wait: true) { _ in }
        defer { lock.release() }
        return try body()
    }

    /// The holders of this directory's checkpoint and reference locks now (for refusals).
    func activeHolders() -> [SweepLock.Holder] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: locksDirectory.path)) ?? []).filter { $0.hasSuffix(".lock") }.sorted()
        return names.compactMap { name in
            let url = locksDirectory.appendingPathComponent(name)
            guard let probe = try? SweepLock.attempt(url, purpose: "checking") else { return SweepLock.holder(of: url) }
            probe.release()
            return nil
        }
    }
}
