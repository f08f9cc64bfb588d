import Foundation

/// A revision resolved to its commit and the files to fetch from it.
public struct HubRevisionPlan: Sendable {
    public var revision: String
    public var commit: String
    /// Every file of the revision, as listed (tree API, or the snapshot when offline).
    public var listing: [HubFile]
    /// What to fetch.
    public var files: [HubFile]
}

/// A revision in the cache after a fetch.
public struct HubFetchedRevision: Sendable {
    public var revision: String
    public var commit: String
    public var snapshot: URL
    public var files: [HubFetchedFile]
    public var downloaded: Int64 { files.reduce(0) { $0 + $1.downloaded } }
}

/// The Hub client a command uses: which revisions exist, what to fetch from each, and the fetch
/// itself, several files at a time. Offline (`HF_HUB_OFFLINE`) every answer comes from the cache.
public struct HubClient: Sendable {
    public let api: HubAPI
    public var downloader: HubDownloader
    public var environment: HubEnvironment { api.environment }

    public init(environment: HubEnvironment) {
        api = HubAPI(environment: environment)
        downloader = HubDownloader(api: api)
    }

    public func cache(_ repo: HubRepository) -> HubCache { HubCache(root: environment.cacheRoot, repository: repo) }

    /// The revisions a list names: `all` (every branch and tag, in natural order: `step2` before
    /// `step10`), or names (branches, tags, commit hashes), each resolved to its commit.
    public func revisions(_ repo: HubRepository, _ names: [String]) throws -> [HubRef] {
        let all = names.count == 1 && names[0] == "all"
        if environment.offline {
            let cache = cache(repo)
            let known = Self.cachedRefs(cache)
            if all {
                guard !known.isEmpty else { throw HubError(.offline, "HF_HUB_OFFLINE is set and the cache has no revisions of \(repo) (\(cache.folder.path))") }
                return known
            }
            return try names.map { name in
                if let ref = known.first(where: { $0.name == name }) { return ref }
                if HubAPI.isCommit(name), FileManager.default.fileExists(atPath: cache.snapshot(name).path) { return HubRef(name: name, commit: name, isTag: false) }
                throw HubError(.offline, "HF_HUB_OFFLINE is set and the cache has no revision '\(name)' of \(repo) (\(cache.folder.path))")
            }
        }
        let refs = try api.refs(repo).sorted { $0.name.compare($1.name, options: .numeric) == .orderedAscending }
        if all { return refs }
        return try names.map { name in
            if let ref = refs.first(where: { $0.name == name }) { return ref }
            // Not a branch or tag: a commit hash (or a prefix of one) the revision API resolves.
            do {
                return HubRef(name: name, commit: try api.commit(repo, revision: name), isTag: false)
            } catch let error as HubError where error.kind == .revisionNotFound {
                let sample = refs.prefix(12).map(\.name).joined(separator: ", ")
                throw HubError(.revisionNotFound, "\(repo) has no revision '\(name)' (\(refs.count) branches and tags, e.g. \(sample))", location: error.location)
            }
        }
    }

    /// The listing of a revision and the files to fetch (`patterns`, or the default selection).
    public func plan(_ repo: HubRepository, _ ref: HubRef, patterns: [String]? = nil) throws -> HubRevisionPlan {
        let listing: [HubFile]
        if environment.offline {
            listing = Self.cachedListing(cache(repo), commit: ref.commit)
        } else {
            listing = try api.tree(repo, revision: ref.commit)
        }
        let files: [HubFile]
        if let patterns {
            files = try HubFileSelection.matching(patterns, in: listing, revision: ref.name)
        } else {
            files = HubFileSelection.defaultFiles(listing)
            guard HubFileSelection.weights(listing) != nil else {
                throw HubError(.fileNotFound, "revision '\(ref.name)' of \(repo) has no weights (no model.safetensors, sharded safetensors, "
                    + "or pytorch_model.bin; it has: \(listing.map(\.path).sorted().joined(separator: ", ")))")
            }
        }
        return HubRevisionPlan(revision: ref.name, commit: ref.commit, listing: listing, files: files)
    }

    /// Fetches every planned file, `jobs` at a time, across revisions; writes each revision's
    /// `refs/<name>` once all its files are in place. The first failure stops the rest and is
    /// thrown (files already complete stay in the cache: they are verified blobs).
    public func fetch(_ repo: HubRepository, _ plans: [HubRevisionPlan], jobs: Int = 4,
                      progress: HubProgress? = nil) throws -> [HubFetchedRevision] {
        let work = plans.enumerated().flatMap { index, plan in plan.files.map { (index, $0) } }
        let cache = cache(repo)
        let results = ResultSlots<HubFetchedFile>(count: work.count)
        let downloader = downloader
        try parallelForEach(work.count, jobs: max(1, jobs)) { k in
            let (index, file) = work[k]
            var report: (@Sendable (Int64) -> Void)?
            if let progress { report = { progress.add($0) } }
            let fetched = try downloader.fetch(repo, revision: plans[index].commit, file: file.path, listed: file,
                                               revisionName: plans[index].revision, progress: report)
            progress?.fileDone()
            results.set(k, fetched)
        }
        var fetched: [HubFetchedRevision] = []
        for (index, plan) in plans.enumerated() {
            if !environment.offline { try cache.writeRef(plan.revision, commit: plan.commit) }
            let files = work.indices.filter { work[$0].0 == index }.compactMap { results.get($0) }
            fetched.append(HubFetchedRevision(revision: plan.revision, commit: plan.commit, snapshot: cache.snapshot(plan.commit), files: files))
        }
        return fetched
    }

    /// Branches in the cache's `refs/` whose snapshot exists, natural order.
    static func cachedRefs(_ cache: HubCache) -> [HubRef] {
        let refs = cache.folder.appendingPathComponent("refs")
        guard let walker = FileManager.default.enumerator(atPath: refs.path) else { return [] }
        var found: [HubRef] = []
        while let relative = walker.nextObject() as? String {
            if let commit = cache.commit(forRevision: relative), FileManager.default.fileExists(atPath: cache.snapshot(commit).path) {
                found.append(HubRef(name: relative, commit: commit, isTag: false))
            }
        }
        return found.sorted { $0.name.compare($1.name, options: .numeric) == .orderedAscending }
    }

    /// A snapshot's files as a listing: size from the blob, sha256 from the blob's name when it is one.
    static func cachedListing(_ cache: HubCache, commit: String) -> [HubFile] {
        let snapshot = cache.snapshot(commit)
        guard let walker = FileManager.default.enumerator(atPath: snapshot.path) else { return [] }
        var files: [HubFile] = []
        while let relative = walker.nextObject() as? String {
            guard let etag = cache.etag(commit: commit, path: relative) else { continue }
            files.append(HubFile(path: relative, size: HubDownloader.size(of: cache.blob(etag)),
                                 blobID: HubAPI.isSHA256(etag) ? nil : etag, lfsSHA256: HubAPI.isSHA256(etag) ? etag : nil))
        }
        return files.sorted { $0.path < $1.path }
    }
}

/// Runs `body(0..<count)` on `jobs` threads; the first error stops the others from starting more.
func parallelForEach(_ count: Int, jobs: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    let state = PoolState()
    let group = DispatchGroup()
    for _ in 0..<min(jobs, max(count, 1)) {
        group.enter()
        Thread.detachNewThread {
            while let k = state.next(count) {
                do { try body(k) } catch { state.fail(error) }
            }
            group.leave()
        }
    }
    group.wait()
    if let error = state.error { throw error }
}

private final class PoolState: @unchecked Sendable {
    private let lock = NSLock()
    private var index = 0
    private var firstError: (any Error)?

    func next(_ count: Int) -> Int? {
        lock.withLock {
            guard firstError == nil, index < count else { return nil }
            defer { index += 1 }
            return index
        }
    }

    func fail(_ error: any Error) { lock.withLock { if firstError == nil { firstError = error } } }
    var error: (any Error)? { lock.withLock { firstError } }
}

final class ResultSlots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [T?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ k: Int, _ value: T) { lock.withLock { slots[k] = value } }
    func get(_ k: Int) -> T? { lock.withLock { slots[k] } }
}
