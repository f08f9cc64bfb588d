import Foundation

/// Turns a `--model` argument into a model directory, so researchers can name a model the way they
/// name it everywhere else: a path, or a Hugging Face id with an optional revision
/// (`EleutherAI/pythia-160m@step1000`) that is already in the local Hugging Face cache. Nothing is
/// downloaded: the probe runs offline, and a miss says exactly where it looked.
public enum ModelLocator {
    /// A parsed `ORG/NAME[@REVISION]`.
    public struct RepositoryID: Sendable, Equatable {
        public var organization: String
        public var name: String
        /// nil means the default branch, `main`.
        public var revision: String?

        /// `models--ORG--NAME`, the cache's folder name for the repository.
        public var cacheFolderName: String { "models--\(organization)--\(name)" }

        /// Parses `ORG/NAME` or `ORG/NAME@REVISION`; nil for anything else (paths included).
        public init?(_ spec: String) {
            var text = Substring(spec)
            var revision: String?
            if let at = text.firstIndex(of: "@") {
                revision = String(text[text.index(after: at)...])
                text = text[..<at]
                guard let revision, !revision.isEmpty, !revision.contains(".."), !revision.hasPrefix("/") else { return nil }
            }
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            func valid(_ part: Substring) -> Bool {
                !part.isEmpty && part != "." && part != ".."
                    && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
            }
            guard parts.count == 2, valid(parts[0]), valid(parts[1]) else { return nil }
            organization = String(parts[0])
            name = String(parts[1])
            self.revision = revision
        }
    }

    /// The Hugging Face hub cache, resolved as `huggingface_hub` resolves it: `$HF_HUB_CACHE`, else
    /// `$HUGGINGFACE_HUB_CACHE` (its older name), else `$HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    public static func cacheRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : expandTilde($0, environment) } }
        if let hub = value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE") { return URL(fileURLWithPath: hub) }
        if let home = value("HF_HOME") { return URL(fileURLWithPath: home).appendingPathComponent("hub") }
        if let cache = value("XDG_CACHE_HOME") { return URL(fileURLWithPath: cache).appendingPathComponent("huggingface/hub") }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/huggingface/hub")
    }

    /// The cache folder (`…/hub/models--ORG--NAME`) of a model id, if the cache holds it.
    public static func cacheRepository(_ spec: String) -> URL? {
        cacheRepository(spec, environment: ProcessInfo.processInfo.environment)
    }

    public static func cacheRepository(_ spec: String, environment: [String: String]) -> URL? {
        guard let id = RepositoryID(spec) else { return nil }
        let folder = cacheRoot(environment: environment).appendingPathComponent(id.cacheFolderName)
        return isDirectory(folder) ? folder : nil
    }

    /// The named revisions (`refs/<name>`) of a cache repository whose snapshot is present, in
    /// natural order (`step2` before `step10`), so a sweep can walk a training run.
    public static func revisions(cacheRepo: URL) throws -> [(revision: String, directory: URL)] {
        let refs = cacheRepo.appendingPathComponent("refs")
        guard isDirectory(refs) else {
            throw FormatError(.malformed, "not a Hugging Face cache repository: no refs/ folder", file: cacheRepo)
        }
        var found: [(revision: String, directory: URL)] = []
        let refsPath = refs.standardizedFileURL.resolvingSymlinksInPath().path
        guard let walker = FileManager.default.enumerator(atPath: refsPath) else {
            throw FormatError(.io, "cannot list refs/", file: refs)
        }
        while let relative = walker.nextObject() as? String {
            let file = URL(fileURLWithPath: refsPath).appendingPathComponent(relative)
            guard !isDirectory(file), let hash = try? readRef(file) else { continue }
            let snapshot = cacheRepo.appendingPathComponent("snapshots").appendingPathComponent(hash)
            if isDirectory(snapshot) { found.append((relative, snapshot)) }
        }
        return found.sorted { $0.revision.compare($1.revision, options: .numeric) == .orderedAscending }
    }

    /// Resolves `spec` (a directory, or `ORG/NAME[@REVISION]`) to a model directory.
    /// Order: an existing directory path (relative paths against `currentDirectory`); the Hugging
    /// Face cache; then, in each of `modelFolders`, `NAME` or `ORG--NAME/REVISION`. The library has
    /// no folder of its own to search: the caller says where local models live.
    public static func resolve(_ spec: String, modelFolders: [URL] = [],
                               environment: [String: String] = ProcessInfo.processInfo.environment,
                               currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) throws -> URL {
        guard !spec.isEmpty else { throw FormatError(.invalidArgument, "empty model specification: expected a model directory or ORG/NAME[@REVISION]") }
        let expanded = expandTilde(spec, environment)
        let asPath = expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded)
                                             : currentDirectory.appendingPathComponent(expanded)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: asPath.path, isDirectory: &isDir) {
            guard isDir.boolValue else {
                throw FormatError(.notFound, "is a file, expected a model directory (holding config.json and weights)", file: asPath)
            }
            return asPath.standardizedFileURL
        }
        guard let id = RepositoryID(spec) else {
            throw FormatError(.notFound, "model directory does not exist (and '\(spec)' is not an ORG/NAME[@REVISION] model id)", file: asPath)
        }

        var looked: [String] = []
        var available: [String] = []
        let revision = id.revision ?? "main"

        // 1. The Hugging Face cache.
        let repository = cacheRoot(environment: environment).appendingPathComponent(id.cacheFolderName)
        if isDirectory(repository) {
            let ref = repository.appendingPathComponent("refs").appendingPathComponent(revision)
            let snapshots = repository.appendingPathComponent("snapshots")
            if FileManager.default.fileExists(atPath: ref.path), !isDirectory(ref) {
                let hash = try readRef(ref)
                let snapshot = snapshots.appendingPathComponent(hash)
                guard isDirectory(snapshot) else {
                    throw FormatError(.notFound, "revision '\(revision)' points at commit \(hash), whose snapshot folder is missing (incomplete download?)", file: snapshot)
                }
                return snapshot
            }
            looked.append(ref.path)
            // A revision may also be a commit hash directly.
            let direct = snapshots.appendingPathComponent(revision)
            if !revision.contains("/"), isDirectory(direct) { return direct }
            looked.append(direct.path)
            available = (try? revisions(cacheRepo: repository).map(\.revision)) ?? []
        } else {
            looked.append(repository.path)
        }

        // 2. Local model folders.
        for models in modelFolders {
            var candidates: [URL] = []
            if let given = id.revision {
                candidates.append(models.appendingPathComponent("\(id.organization)--\(id.name)").appendingPathComponent(given))
                candidates.append(models.appendingPathComponent(id.name).appendingPathComponent(given))
            } else {
                candidates.append(models.appendingPathComponent(id.name))
                candidates.append(models.appendingPathComponent("\(id.organization)--\(id.name)").appendingPathComponent("main"))
            }
            for candidate in candidates {
                if isDirectory(candidate) { return candidate.standardizedFileURL }
                looked.append(candidate.path)
            }
        }

        var message = "cannot find model '\(id.organization)/\(id.name)' at revision '\(revision)'; looked in: \(looked.joined(separator: ", "))"
        if isDirectory(repository) {
            message += available.isEmpty ? "; the cache has no revisions of it with a snapshot"
                                         : "; revisions in the cache: \(available.joined(separator: ", "))"
        }
        message += " (nothing is downloaded here: fetch it with neoxprobe fetch \(id.organization)/\(id.name) --revisions \(revision))"
        throw FormatError(.notFound, message)
    }

    /// A ref file holds one commit hash.
    private static func readRef(_ file: URL) throws -> String {
        let text: String
        do { text = try String(contentsOf: file, encoding: .utf8) } catch {
            throw FormatError(.io, "cannot read ref: \(error.localizedDescription)", file: file)
        }
        let hash = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !hash.isEmpty, !hash.contains("/"), hash != "..", hash != "." else {
            throw FormatError(.malformed, "ref file does not hold a commit hash", file: file)
        }
        return hash
    }

    private static func isDirectory(_ url: URL) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
    }

    private static func expandTilde(_ path: String, _ environment: [String: String]) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + path.dropFirst()
    }
}
