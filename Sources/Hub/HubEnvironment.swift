import Formats
import Foundation

/// Where the Hub is and where its cache lives, read from the same environment variables, with the
/// same defaults and precedence, as `huggingface_hub.constants`:
///
/// - `HF_ENDPOINT` (default `https://huggingface.co`, trailing `/` dropped);
/// - `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, `HF_HOME` defaulting to
///   `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` (`ModelLocator.cacheRoot`, so the
///   engine reads exactly the cache this client writes);
/// - `HF_TOKEN` (or the older `HUGGING_FACE_HUB_TOKEN`), else the file `HF_TOKEN_PATH`, default
///   `$HF_HOME/token`, as `huggingface-cli login` writes it;
/// - `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) = 1/ON/YES/TRUE: no request is made;
/// - `HF_HUB_ETAG_TIMEOUT` (metadata requests) and `HF_HUB_DOWNLOAD_TIMEOUT` (idle time while a
///   body streams), seconds, default 10 each.
public struct HubEnvironment: Sendable {
    public var endpoint: URL
    public var cacheRoot: URL
    public var token: String?
    public var offline: Bool
    public var metadataTimeout: Double
    public var downloadTimeout: Double
    /// The `.locks/` folder beside the repositories, as huggingface_hub keeps its file locks.
    public var locksRoot: URL { cacheRoot.appendingPathComponent(".locks") }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let endpointText = (value("HF_ENDPOINT") ?? "https://huggingface.co").trimmingTrailing("/")
        guard let endpoint = URL(string: endpointText), let scheme = endpoint.scheme?.lowercased(),
              scheme == "http" || scheme == "https", endpoint.host != nil else {
            throw HubError(.invalidArgument, "HF_ENDPOINT '\(endpointText)' is not an http(s) URL")
        }
        self.endpoint = endpoint
        cacheRoot = ModelLocator.cacheRoot(environment: environment)
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        func expand(_ path: String) -> String { path == "~" || path.hasPrefix("~/") ? home + path.dropFirst() : path }
        let hfHome = value("HF_HOME").map(expand)
            ?? value("XDG_CACHE_HOME").map { expand($0) + "/huggingface" } ?? home + "/.cache/huggingface"
        if let token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN") {
            self.token = token.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            let file = value("HF_TOKEN_PATH").map(expand) ?? hfHome + "/token"
            let text = (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            token = text.flatMap { $0.isEmpty ? nil : $0 }
        }
        func isTrue(_ name: String) -> Bool { ["1", "ON", "YES", "TRUE"].contains(value(name)?.uppercased() ?? "") }
        offline = isTrue("HF_HUB_OFFLINE") || isTrue("TRANSFORMERS_OFFLINE")
        func seconds(_ name: String) throws -> Double {
            guard let text = value(name) else { return 10 }
            guard let seconds = Double(text), seconds > 0, seconds <= 86_400 else {
                throw HubError(.invalidArgument, "\(name) must be a number of seconds in (0, 86400], got '\(text)'")
            }
            return seconds
        }
        metadataTimeout = try seconds("HF_HUB_ETAG_TIMEOUT")
        downloadTimeout = try seconds("HF_HUB_DOWNLOAD_TIMEOUT")
    }
}

extension String {
    func trimmingTrailing(_ character: Character) -> String {
        var text = Substring(self)
        while text.last == character { text = text.dropLast() }
        return String(text)
    }
}
