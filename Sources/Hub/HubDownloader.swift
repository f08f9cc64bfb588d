import Formats
import Foundation

/// What `hf_hub_download` learns from the HEAD of `resolve/<revision>/<file>` (`get_hf_file_metadata`):
/// the commit (`X-Repo-Commit`), the etag (`X-Linked-Etag`, else `ETag`, quotes and `W/` dropped),
/// the size (`X-Linked-Size`, else `Content-Length`) and where the bytes are (`Location` of a
/// redirect to the CDN, else the resolve URL itself).
public struct HubFileMetadata: Sendable, Equatable {
    public var commit: String
    public var etag: String
    public var size: Int64
    public var location: URL
}

/// One file placed in the cache.
public struct HubFetchedFile: Sendable {
    public var path: String
    public var etag: String
    public var size: Int64
    /// Bytes transferred by this call (0 when the blob was already there).
    public var downloaded: Int64
    /// The blob existed before this call.
    public var wasCached: Bool
}

/// Downloads single files into the cache the way `hf_hub_download` does, and more carefully:
/// the body goes to `blobs/<etag>.incomplete` (resumed with `Range: bytes=N-` after a dropped
/// connection, in this run or the next), its size and, for LFS files, its sha256 are checked, and
/// only then is it renamed into `blobs/` and linked from the snapshot. A failure leaves no blob and
/// no link, only (for a resumable failure) the `.incomplete` file.
public struct HubDownloader: Sendable {
    public let api: HubAPI
    /// Attempts per file when the body is cut short or the server stops answering.
    public var attempts = 3
    /// Free bytes on the file system holding `url` (replaceable so tests can simulate a full disk).
    public var freeSpace: @Sendable (URL) -> Int64? = { url in
        (try? FileManager.default.attributesOfFileSystem(forPath: url.path)[.systemFreeSize] as? NSNumber)?.int64Value
    }

    public init(api: HubAPI) {
        self.api = api
    }

    var http: HubHTTP { api.http }
    var environment: HubEnvironment { api.environment }

    /// HEAD of the resolve URL, following only relative (same-host) redirects, as huggingface_hub does.
    public func metadata(_ repo: HubRepository, revision: String, file: String) throws -> HubFileMetadata {
        let url = api.resolveURL(repo, revision: revision, file: file)
        try api.checkOnline(url)
        var current = url
        var response = try http.perform("HEAD", current, headers: ["Accept-Encoding": "identity"], timeout: environment.metadataTimeout)
        var hops = 0
        // A relative Location (no scheme, no host: a renamed repository) is followed; an absolute
        // one (the CDN) is where the bytes are, and its answer would lose the X-Linked-* headers.
        while (300..<400).contains(response.status), let location = response.header("location"), HubAPI.isRelative(location),
              let target = URL(string: location, relativeTo: current)?.absoluteURL {
            hops += 1
            guard hops <= 10 else { throw HubError(.server, "HEAD \(url.absoluteString): more than 10 redirects", location: url.absoluteString) }
            current = target
            response = try http.perform("HEAD", current, headers: ["Accept-Encoding": "identity"], timeout: environment.metadataTimeout)
        }
        if response.status == 404, response.header("x-error-code") == nil {
            // Say whether the revision or the file is missing: ask for the revision itself.
            _ = try api.commit(repo, revision: revision)
        }
        if (300..<400).contains(response.status), response.header("location") == nil {
            throw HubError(.server, "HEAD \(current.absoluteString): HTTP \(response.status) without a Location", location: current.absoluteString)
        }
        if !(300..<400).contains(response.status) { try HubAPI.check(response, repo: repo, revision: revision, file: file) }
        let at = "\(repo) \(file) at revision '\(revision)' (\(url.absoluteString))"
        guard let commit = response.header("x-repo-commit"), HubAPI.isCommit(commit) else {
            throw HubError(.malformed, "\(at): the answer has no X-Repo-Commit header (not a Hugging Face Hub endpoint?)", location: url.absoluteString)
        }
        guard let rawEtag = response.header("x-linked-etag") ?? response.header("etag") else {
            throw HubError(.malformed, "\(at): the answer has no ETag", location: url.absoluteString)
        }
        let etag = Self.normalizeEtag(rawEtag)
        guard HubCache.isSafeName(etag) else { throw HubError(.malformed, "\(at): ETag '\(rawEtag)' is not a usable blob name", location: url.absoluteString) }
        guard let sizeText = response.header("x-linked-size") ?? response.header("content-length"), let size = Int64(sizeText), size >= 0 else {
            throw HubError(.malformed, "\(at): the answer has no size (X-Linked-Size or Content-Length)", location: url.absoluteString)
        }
        var location = current
        if (300..<400).contains(response.status), let target = response.header("location") {
            guard let resolved = URL(string: target, relativeTo: current)?.absoluteURL else {
                throw HubError(.malformed, "\(at): unusable Location '\(target)'", location: url.absoluteString)
            }
            location = resolved
        }
        return HubFileMetadata(commit: commit, etag: etag, size: size, location: location)
    }

    /// `_normalize_etag`: `W/"abc"` and `"abc"` both mean `abc`.
    static func normalizeEtag(_ etag: String) -> String {
        var text = Substring(etag.trimmingCharacters(in: .whitespaces))
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        return text.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    /// Puts `file` of `revision` in the cache (blob, then snapshot link) and returns what it did.
    /// `listed` is the tree API's entry, whose size and LFS sha256 the download must match;
    /// `progress` is told every chunk's size.
    /// `revisionName` is the branch a commit `revision` was resolved from, for messages.
    public func fetch(_ repo: HubRepository, revision: String, file: String, listed: HubFile? = nil, revisionName: String? = nil,
                      progress: (@Sendable (Int64) -> Void)? = nil) throws -> HubFetchedFile {
        guard HubCache.isSafePath(file) else { throw HubError(.invalidArgument, "'\(file)' is not a file path inside a repository") }
        let cache = HubCache(root: environment.cacheRoot, repository: repo)
        if environment.offline {
            guard let commit = HubAPI.isCommit(revision) ? revision : cache.commit(forRevision: revision),
                  let etag = cache.etag(commit: commit, path: file) else {
                throw HubError(.offline, "HF_HUB_OFFLINE is set and the cache \(cache.folder.path) has no \(file) of \(repo) at revision '\(revision)'",
                               location: cache.folder.path)
            }
            return HubFetchedFile(path: file, etag: etag, size: Self.size(of: cache.blob(etag)), downloaded: 0, wasCached: true)
        }
        let meta = try metadata(repo, revision: revision, file: file)
        let what = "\(file) of \(repo) at revision '\(revisionName ?? revision)'" + (revisionName.map { $0 == revision ? "" : " (commit \(revision))" } ?? "")
        if let listed {
            if listed.size != meta.size {
                throw HubError(.malformed, "\(what): the tree lists \(listed.size) bytes, the resolve answer says \(meta.size)", location: meta.location.absoluteString)
            }
            if let sha = listed.lfsSHA256, sha != meta.etag {
                throw HubError(.malformed, "\(what): the resolve ETag \(meta.etag) is not the tree's lfs.oid \(sha)", location: meta.location.absoluteString)
            }
        }
        let expectedSHA256 = listed?.lfsSHA256 ?? (HubAPI.isSHA256(meta.etag) ? meta.etag : nil)
        let blob = cache.blob(meta.etag)
        var downloaded: Int64 = 0
        var wasCached = true
        if !FileManager.default.fileExists(atPath: blob.path) {
            try cache.withLock(meta.etag) {
                guard !FileManager.default.fileExists(atPath: blob.path) else { return }
                wasCached = false
                downloaded = try download(meta, to: cache, what: what, sha256: expectedSHA256, progress: progress)
            }
        }
        try cache.link(commit: meta.commit, path: file, etag: meta.etag)
        return HubFetchedFile(path: file, etag: meta.etag, size: meta.size, downloaded: downloaded, wasCached: wasCached)
    }

    /// The body into `<etag>.incomplete`, resumed and retried, verified, then renamed into place.
    private func download(_ meta: HubFileMetadata, to cache: HubCache, what: String, sha256 expected: String?,
                          progress: (@Sendable (Int64) -> Void)?) throws -> Int64 {
        let partial = cache.incomplete(meta.etag)
        let url = meta.location
        let fileManager = FileManager.default
        do {
            try fileManager.createDirectory(at: cache.blobsFolder, withIntermediateDirectories: true)
        } catch {
            throw HubError(.io, "cannot create \(cache.blobsFolder.path): \(error)", location: cache.blobsFolder.path)
        }
        var transferred: Int64 = 0
        var attempt = 0
        // The sha256 is computed as the bytes arrive; a partial file left by an earlier run is hashed first.
        let digest = expected == nil ? nil : RunningDigest()
        while true {
            attempt += 1
            var have = Self.size(of: partial)
            if have > meta.size {
                try? fileManager.removeItem(at: partial)
                have = 0
            }
            if let digest, digest.count != have { try digest.restart(from: partial, length: have) }
            if have == meta.size { break }
            if let free = freeSpace(cache.blobsFolder), free < meta.size - have {
                throw HubError(.diskFull, "not enough disk space for \(what): it needs \(meta.size - have) more bytes, "
                    + "\(free) are free on the file system of \(cache.blobsFolder.path)", location: cache.blobsFolder.path)
            }
            do {
                transferred += try transfer(url, into: partial, from: have, total: meta.size, what: what, digest: digest, progress: progress)
            } catch let error as HubError where [.truncated, .timeout, .connection].contains(error.kind) {
                guard attempt < attempts else {
                    let now = Self.size(of: partial)
                    let kind: HubError.Kind = error.kind == .timeout ? .timeout : .truncated
                    throw HubError(kind, "\(what): \(error.message) (\(attempts) attempts); \(now) of \(meta.size) bytes are kept in \(partial.path) "
                        + "and the next fetch resumes from them", location: url.absoluteString)
                }
                Thread.sleep(forTimeInterval: 0.2 * Double(attempt))
                continue
            }
            let now = Self.size(of: partial)
            if now == meta.size { break }
            if now > meta.size {
                try? fileManager.removeItem(at: partial)
                throw HubError(.malformed, "\(what): \(url.absoluteString) sent more than the \(meta.size) bytes announced; the partial file was removed",
                               location: url.absoluteString)
            }
            guard attempt < attempts else {
                throw HubError(.truncated, "\(what): the body from \(url.absoluteString) ended after \(now) of \(meta.size) bytes "
                    + "(\(attempts) attempts); \(partial.path) is kept and the next fetch resumes from it", location: url.absoluteString)
            }
            Thread.sleep(forTimeInterval: 0.2 * Double(attempt))
        }
        if let expected, let digest {
            if digest.count != Self.size(of: partial) { try digest.restart(from: partial, length: Self.size(of: partial)) }
            let actual = digest.finish()
            guard actual == expected else {
                try? fileManager.removeItem(at: partial)
                throw HubError(.hashMismatch, "\(what): the \(meta.size) bytes from \(url.absoluteString) hash to sha256 \(actual), "
                    + "not the \(expected) the Hub names the file by; nothing was written to the cache", location: url.absoluteString)
            }
        }
        guard rename(partial.path, cache.blob(meta.etag).path) == 0 else {
            throw HubError(.io, "cannot move \(partial.path) into place: \(String(cString: strerror(errno)))", location: partial.path)
        }
        return transferred
    }

    /// One GET of `url` from byte `offset`, appended to `partial`. Returns the bytes received.
    private func transfer(_ url: URL, into partial: URL, from offset: Int64, total: Int64, what: String,
                          digest: RunningDigest?, progress: (@Sendable (Int64) -> Void)?) throws -> Int64 {
        let fileManager = FileManager.default
        if !fileManager.fileExists(atPath: partial.path) {
            guard fileManager.createFile(atPath: partial.path, contents: nil) else {
                throw HubError(.io, "cannot create \(partial.path)", location: partial.path)
            }
        }
        let handle: FileHandle
        do { handle = try FileHandle(forWritingTo: partial) } catch {
            throw HubError(.io, "cannot open \(partial.path) for writing: \(error)", location: partial.path)
        }
        defer { try? handle.close() }
        let received = Counter()
        var headers = ["Accept-Encoding": "identity"]
        if offset > 0 { headers["Range"] = "bytes=\(offset)-" }
        let response = try http.perform("GET", url, headers: headers, timeout: environment.downloadTimeout, head: { status, headers in
            switch status {
            case 206:
                let range = headers["content-range"] ?? ""
                guard range.hasPrefix("bytes \(offset)-") else {
                    throw HubError(.server, "\(what): asked \(url.absoluteString) for bytes \(offset)- and got Content-Range '\(range)'", location: url.absoluteString)
                }
                try handle.seek(toOffset: UInt64(offset))
            case 200:
                // The server ignored the Range: start the file over (with none asked, it is empty).
                if offset > 0 { try handle.truncate(atOffset: 0) }
                digest?.reset()
            default:
                break
            }
        }, sink: { data in
            do { try handle.write(contentsOf: data) } catch {
                throw Self.writeError(error, file: partial, what: what)
            }
            digest?.update(data)
            received.add(Int64(data.count))
            progress?(Int64(data.count))
        })
        if response.status == 416 { return 0 }
        if !(200..<300).contains(response.status) {
            if (300..<400).contains(response.status) {
                throw HubError(.server, "\(what): \(url.absoluteString) redirected again (HTTP \(response.status)) instead of sending the file", location: url.absoluteString)
            }
            let kind: HubError.Kind = response.status == 401 || response.status == 403 ? .unauthorized : response.status == 404 ? .fileNotFound : .server
            let hint = kind == .unauthorized ? " (access denied: a gated repository needs HF_TOKEN or $HF_HOME/token)" : ""
            throw HubError(kind, "\(what): HTTP \(response.status) from \(url.absoluteString)\(hint)", location: url.absoluteString)
        }
        do { try handle.synchronize() } catch { throw Self.writeError(error, file: partial, what: what) }
        return received.value
    }

    static func writeError(_ error: any Error, file: URL, what: String) -> HubError {
        let nsError = error as NSError
        let posix = (nsError.userInfo[NSUnderlyingErrorKey] as? NSError).flatMap { $0.domain == NSPOSIXErrorDomain ? $0.code : nil }
        if (nsError.domain == NSPOSIXErrorDomain && nsError.code == Int(ENOSPC)) || posix == Int(ENOSPC)
            || nsError.code == CocoaError.fileWriteOutOfSpace.rawValue {
            return HubError(.diskFull, "the disk is full: writing \(what) to \(file.path) failed; the partial file is kept for a resume", location: file.path)
        }
        return HubError(.io, "writing \(what) to \(file.path) failed: \(error.localizedDescription)", location: file.path)
    }

    static func size(of url: URL) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.int64Value ?? 0
    }
}

/// A sha256 fed by a transfer's callbacks (one at a time), and how many bytes it has seen.
final class RunningDigest: @unchecked Sendable {
    private var digest = SHA256()
    private(set) var count: Int64 = 0

    func update(_ data: Data) {
        data.withUnsafeBytes { digest.update($0) }
        count += Int64(data.count)
    }

    func reset() {
        digest = SHA256()
        count = 0
    }

    /// Starts over with the first `length` bytes of `file`.
    func restart(from file: URL, length: Int64) throws {
        reset()
        guard length > 0 else { return }
        guard let handle = FileHandle(forReadingAtPath: file.path) else { throw HubError(.io, "cannot read \(file.path)", location: file.path) }
        defer { try? handle.close() }
        while count < length, let chunk = try handle.read(upToCount: Int(min(4 << 20, length - count))), !chunk.isEmpty {
            update(chunk)
        }
    }

    func finish() -> String { digest.finish() }
}

/// A byte count shared between a transfer's callbacks.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var total: Int64 = 0
    func add(_ n: Int64) { lock.withLock { total += n } }
    var value: Int64 { lock.withLock { total } }
}
