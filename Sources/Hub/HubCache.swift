import Formats
import Foundation

/// huggingface_hub's cache layout for one repository, written exactly as `hf_hub_download` writes it
/// so Python tools and this engine share one cache:
///
/// ```
/// <cache>/models--ORG--NAME/
///     blobs/<etag>                 the content (etag = sha256 for LFS files, git blob sha1 otherwise)
///     blobs/<etag>.incomplete      a download in progress (resumed with an HTTP Range request)
///     snapshots/<commit>/<file>    relative symlink to ../../blobs/<etag>
///     refs/<revision>              the commit hash, no trailing newline
/// <cache>/.locks/models--ORG--NAME/<etag>.lock
/// ```
public struct HubCache: Sendable {
    public let root: URL
    public let repository: HubRepository

    public init(root: URL, repository: HubRepository) {
        self.root = root
        self.repository = repository
    }

    public var folder: URL { root.appendingPathComponent(repository.cacheFolderName) }
    public var blobsFolder: URL { folder.appendingPathComponent("blobs") }
    public func blob(_ etag: String) -> URL { blobsFolder.appendingPathComponent(etag) }
    public func incomplete(_ etag: String) -> URL { blobsFolder.appendingPathComponent(etag + ".incomplete") }
    public func snapshot(_ commit: String) -> URL { folder.appendingPathComponent("snapshots").appendingPathComponent(commit) }
    public func pointer(commit: String, path: String) -> URL { snapshot(commit).appendingPathComponent(path) }
    public func ref(_ revision: String) -> URL { folder.appendingPathComponent("refs").appendingPathComponent(revision) }
    var lockFolder: URL { root.appendingPathComponent(".locks").appendingPathComponent(repository.cacheFolderName) }

    /// The commit `refs/<revision>` names, nil when absent.
    public func commit(forRevision revision: String) -> String? {
        guard let text = try? String(contentsOf: ref(revision), encoding: .utf8) else { return nil }
        let hash = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return HubAPI.isCommit(hash) ? hash : nil
    }

    /// Records `revision → commit` (skipped when the revision is the commit itself, or already recorded).
    public func writeRef(_ revision: String, commit: String) throws {
        guard revision != commit, self.commit(forRevision: revision) != commit else { return }
        let url = ref(revision)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try AtomicFile.write(commit, to: url)
        } catch {
            throw HubError(.io, "cannot write the cache ref \(url.path): \(error)", location: url.path)
        }
    }

    /// The blob a snapshot file points at (its etag), nil when the pointer or its blob is missing.
    public func etag(commit: String, path: String) -> String? {
        let pointer = pointer(commit: commit, path: path)
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: pointer.path) else { return nil }
        let etag = URL(fileURLWithPath: target).lastPathComponent
        return FileManager.default.fileExists(atPath: blob(etag).path) ? etag : nil
    }

    /// Points `snapshots/<commit>/<path>` at `blobs/<etag>` with a relative link (the form
    /// `_create_symlink` writes), replacing what was there atomically.
    public func link(commit: String, path: String, etag: String) throws {
        let pointer = pointer(commit: commit, path: path)
        let depth = path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth) + "../../blobs/" + etag
        let fileManager = FileManager.default
        do {
            try fileManager.createDirectory(at: pointer.deletingLastPathComponent(), withIntermediateDirectories: true)
            if (try? fileManager.destinationOfSymbolicLink(atPath: pointer.path)) == target { return }
            let temporary = pointer.deletingLastPathComponent().appendingPathComponent(".\(pointer.lastPathComponent).link-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            try fileManager.createSymbolicLink(atPath: temporary.path, withDestinationPath: target)
            guard rename(temporary.path, pointer.path) == 0 else {
                let reason = String(cString: strerror(errno))
                try? fileManager.removeItem(at: temporary)
                throw HubError(.io, "cannot link \(pointer.path) to \(target): \(reason)", location: pointer.path)
            }
        } catch let error as HubError {
            throw error
        } catch {
            throw HubError(.io, "cannot link \(pointer.path) to \(target): \(error)", location: pointer.path)
        }
    }

    /// Holds `.locks/models--ORG--NAME/<etag>.lock` (flock, as filelock does) while `body` runs, so two
    /// processes, or two threads, never write the same blob at once.
    public func withLock<R>(_ etag: String, _ body: () throws -> R) throws -> R {
        let url = lockFolder.appendingPathComponent(etag + ".lock")
        do {
            try FileManager.default.createDirectory(at: lockFolder, withIntermediateDirectories: true)
        } catch {
            throw HubError(.io, "cannot create the lock folder \(lockFolder.path): \(error)", location: lockFolder.path)
        }
        let descriptor = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw HubError(.io, "cannot open the lock file \(url.path): \(String(cString: strerror(errno)))", location: url.path)
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw HubError(.io, "cannot lock \(url.path): \(String(cString: strerror(errno)))", location: url.path) }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    /// Names that can be a path segment: an etag comes from a server and must never climb out of blobs/.
    static func isSafeName(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 128 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_".contains($0)) }
    }

    /// A file path inside a snapshot: relative, no `..`, no empty segments.
    static func isSafePath(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return !path.isEmpty && !path.hasPrefix("/") && parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }
}
