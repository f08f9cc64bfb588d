import Foundation

/// A model repository on the Hub, `ORG/NAME`.
public struct HubRepository: Sendable, Equatable, CustomStringConvertible {
    public var organization: String
    public var name: String

    /// Accepts `ORG/NAME` with the characters Hub repository ids use.
    public init(_ id: String) throws {
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        func valid(_ part: Substring) -> Bool {
            !part.isEmpty && part != "." && part != ".." && part.count <= 96
                && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
        }
        guard parts.count == 2, valid(parts[0]), valid(parts[1]) else {
            throw HubError(.invalidArgument, "'\(id)' is not a Hub model id (expected ORG/NAME, e.g. EleutherAI/pythia-160m)")
        }
        organization = String(parts[0])
        name = String(parts[1])
    }

    public var description: String { "\(organization)/\(name)" }
    /// `models--ORG--NAME`, the cache folder (huggingface_hub's `repo_folder_name`).
    public var cacheFolderName: String { "models--\(organization)--\(name)" }
}

/// One file of a revision, as the tree API lists it.
public struct HubFile: Sendable, Equatable {
    public var path: String
    public var size: Int64
    /// The git blob id (sha1): the ETag of a file stored in git.
    public var blobID: String?
    /// `lfs.oid`: the sha256 of an LFS file's content, its ETag and its blob name in the cache.
    public var lfsSHA256: String?

    public init(path: String, size: Int64, blobID: String? = nil, lfsSHA256: String? = nil) {
        self.path = path
        self.size = size
        self.blobID = blobID
        self.lfsSHA256 = lfsSHA256
    }
}

/// A branch or tag and the commit it points at (`GET /api/models/{repo}/refs`).
public struct HubRef: Sendable, Equatable {
    public var name: String
    public var commit: String
    public var isTag: Bool
}

/// The Hub's JSON API, as `HfApi.list_repo_refs`, `HfApi.model_info(revision=)` and
/// `HfApi.list_repo_tree` call it.
public struct HubAPI: Sendable {
    let http: HubHTTP
    public var environment: HubEnvironment { http.environment }

    public init(environment: HubEnvironment) {
        http = HubHTTP(environment: environment)
    }

    /// Every branch and tag (`/api/models/{repo}/refs`); Pythia's `stepN` checkpoints are branches.
    public func refs(_ repo: HubRepository) throws -> [HubRef] {
        let url = apiURL(repo, "refs")
        let object = try json(url, repo: repo, revision: nil, file: nil)
        guard let dictionary = object as? [String: Any] else { throw malformed(url, "expected an object with branches and tags") }
        var refs: [HubRef] = []
        for (key, isTag) in [("branches", false), ("tags", true)] {
            for entry in dictionary[key] as? [[String: Any]] ?? [] {
                guard let name = entry["name"] as? String, let commit = entry["targetCommit"] as? String, Self.isCommit(commit) else {
                    throw malformed(url, "a \(key) entry lacks name or targetCommit")
                }
                refs.append(HubRef(name: name, commit: commit, isTag: isTag))
            }
        }
        return refs
    }

    /// The commit a revision (branch, tag or commit) points at (`/api/models/{repo}/revision/{rev}`, field `sha`).
    public func commit(_ repo: HubRepository, revision: String) throws -> String {
        let url = apiURL(repo, "revision", revision)
        let object = try json(url, repo: repo, revision: revision, file: nil)
        guard let sha = (object as? [String: Any])?["sha"] as? String, Self.isCommit(sha) else {
            throw malformed(url, "the revision info has no commit sha")
        }
        return sha
    }

    /// Every file of a revision with sizes and LFS sha256 (`/api/models/{repo}/tree/{rev}?recursive=true`,
    /// following `Link: <…>; rel="next"` pages).
    public func tree(_ repo: HubRepository, revision: String) throws -> [HubFile] {
        var next: URL? = apiURL(repo, "tree", revision, query: "recursive=true&expand=false")
        var files: [HubFile] = []
        var pages = 0
        while let url = next {
            pages += 1
            guard pages <= 10_000 else { throw malformed(url, "more than 10000 pages of tree listing") }
            let (object, response) = try jsonResponse(url, repo: repo, revision: revision, file: nil)
            guard let entries = object as? [[String: Any]] else { throw malformed(url, "expected a list of tree entries") }
            for entry in entries where entry["type"] as? String == "file" {
                guard let path = entry["path"] as? String, let size = (entry["size"] as? NSNumber)?.int64Value, size >= 0 else {
                    throw malformed(url, "a file entry lacks path or size")
                }
                let lfs = entry["lfs"] as? [String: Any]
                let sha256 = lfs?["oid"] as? String
                if let sha256, !Self.isSHA256(sha256) { throw malformed(url, "lfs.oid of \(path) is not a sha256: \(sha256)") }
                files.append(HubFile(path: path, size: size, blobID: entry["oid"] as? String, lfsSHA256: sha256))
            }
            next = response.header("link").flatMap(Self.nextLink)
        }
        return files
    }

    // MARK: - URLs and JSON

    func apiURL(_ repo: HubRepository, _ kind: String, _ revision: String? = nil, query: String? = nil) -> URL {
        var text = environment.endpoint.absoluteString + "/api/models/\(repo.organization)/\(repo.name)/\(kind)"
        if let revision { text += "/" + Self.escape(revision) }
        if let query { text += "?" + query }
        return URL(string: text)!
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{file}`, `hf_hub_url`'s form.
    public func resolveURL(_ repo: HubRepository, revision: String, file: String) -> URL {
        let path = file.split(separator: "/").map { Self.escape(String($0)) }.joined(separator: "/")
        return URL(string: environment.endpoint.absoluteString + "/\(repo.organization)/\(repo.name)/resolve/\(Self.escape(revision))/\(path)")!
    }

    /// Percent-encodes a path segment (`refs/pr/1` becomes `refs%2Fpr%2F1`, as `quote(safe="")` does).
    static func escape(_ segment: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return segment.addingPercentEncoding(withAllowedCharacters: allowed) ?? segment
    }

    private func json(_ url: URL, repo: HubRepository, revision: String?, file: String?) throws -> Any {
        try jsonResponse(url, repo: repo, revision: revision, file: file).0
    }

    private func jsonResponse(_ url: URL, repo: HubRepository, revision: String?, file: String?) throws -> (Any, HubHTTP.Response) {
        try checkOnline(url)
        var response = try http.perform("GET", url, timeout: environment.metadataTimeout)
        var hops = 0
        // Renamed repositories answer with a relative redirect; follow those (only those).
        while (300..<400).contains(response.status), let location = response.header("location"), Self.isRelative(location),
              let target = URL(string: location, relativeTo: url), hops < 5 {
            hops += 1
            response = try http.perform("GET", target.absoluteURL, timeout: environment.metadataTimeout)
        }
        try Self.check(response, repo: repo, revision: revision, file: file)
        do {
            return (try JSONSerialization.jsonObject(with: response.body), response)
        } catch {
            throw malformed(url, "the answer is not JSON")
        }
    }

    func checkOnline(_ url: URL) throws {
        if environment.offline {
            throw HubError(.offline, "HF_HUB_OFFLINE is set: not requesting \(url.absoluteString), and the cache does not have it",
                           location: url.absoluteString)
        }
    }

    private func malformed(_ url: URL, _ what: String) -> HubError {
        HubError(.malformed, "\(url.absoluteString): \(what)", location: url.absoluteString)
    }

    /// Maps a non-2xx answer to the error a person can act on, using the Hub's `X-Error-Code`
    /// (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, `GatedRepo`) as `hf_raise_for_status` does.
    static func check(_ response: HubHTTP.Response, repo: HubRepository, revision: String?, file: String?) throws {
        let status = response.status
        guard !(200..<300).contains(status) else { return }
        let url = response.url.absoluteString
        let code = response.header("x-error-code") ?? ""
        let serverMessage = response.header("x-error-message").map { " Server says: \($0)" } ?? ""
        let at = revision.map { " at revision '\($0)'" } ?? ""
        switch (status, code) {
        case (_, "GatedRepo"), (403, _):
            throw HubError(.unauthorized, "HTTP \(status) for \(url): access to \(repo) is restricted (a gated repository: accept its terms on the Hub, "
                + "then set HF_TOKEN or put a token in $HF_HOME/token).\(serverMessage)", location: url)
        case (401, "RepoNotFound"), (404, "RepoNotFound"):
            throw HubError(.repositoryNotFound, "HTTP \(status) for \(url): repository \(repo) not found (or private: set HF_TOKEN).\(serverMessage)", location: url)
        case (401, _):
            throw HubError(.unauthorized, "HTTP 401 for \(url): not authorized for \(repo) (a gated or private repository, or an invalid token; "
                + "set HF_TOKEN or put a token in $HF_HOME/token).\(serverMessage)", location: url)
        case (404, "RevisionNotFound"):
            throw HubError(.revisionNotFound, "HTTP 404 for \(url): revision '\(revision ?? "?")' does not exist in \(repo).\(serverMessage)", location: url)
        case (404, "EntryNotFound"):
            throw HubError(.fileNotFound, "HTTP 404 for \(url): file '\(file ?? "?")' does not exist in \(repo)\(at).\(serverMessage)", location: url)
        case (404, _):
            throw HubError(file == nil ? .revisionNotFound : .fileNotFound,
                           "HTTP 404 for \(url): \(file.map { "file '\($0)'" } ?? "revision '\(revision ?? "main")'") not found in \(repo)\(file == nil ? "" : at).\(serverMessage)",
                           location: url)
        default:
            throw HubError(.server, "HTTP \(status) for \(url) (\(repo)\(at)\(file.map { ", file \($0)" } ?? "")).\(serverMessage)", location: url)
        }
    }

    /// The URL of `rel="next"` in a `Link` header.
    static func nextLink(_ header: String) -> URL? {
        for part in header.split(separator: ",") where part.contains("rel=\"next\"") {
            guard let open = part.firstIndex(of: "<"), let close = part.firstIndex(of: ">"), open < close else { continue }
            return URL(string: String(part[part.index(after: open)..<close]))
        }
        return nil
    }

    /// A `Location` without scheme and host, which huggingface_hub's `_request_wrapper` follows.
    static func isRelative(_ location: String) -> Bool { URL(string: location).map { $0.scheme == nil && $0.host == nil } ?? false }

    static func isCommit(_ text: String) -> Bool { text.count == 40 && text.allSatisfy(\.isHexDigit) }
    static func isSHA256(_ text: String) -> Bool { text.count == 64 && text.allSatisfy { $0.isHexDigit && !$0.isUppercase } }
}
