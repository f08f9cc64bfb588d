import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Blocking HTTP requests over URLSession, with what the Hub protocol needs and URLSession does
/// not do by itself: redirects are never followed automatically (huggingface_hub follows only
/// relative ones for metadata, to keep the `X-Linked-*` headers of the resolve response, and the
/// download goes to the `Location` itself), bodies can be streamed into a sink as they arrive, and
/// every failure becomes a `HubError` naming the URL.
struct HubHTTP: Sendable {
    struct Response: Sendable {
        var status: Int
        /// Header names lowercased.
        var headers: [String: String]
        var url: URL
        var body: Data

        func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    let environment: HubEnvironment
    let userAgent = "neoxprobe/0.1; huggingface_hub-compatible"

    /// Headers every request carries; the token goes only to the endpoint's own host (as
    /// `requests` drops `Authorization` when a redirect leaves the host, a CDN never sees it).
    func headers(for url: URL, extra: [String: String] = [:]) -> [String: String] {
        var headers = ["User-Agent": userAgent]
        if let token = environment.token, url.host == environment.endpoint.host, url.port == environment.endpoint.port {
            headers["Authorization"] = "Bearer \(token)"
        }
        headers.merge(extra) { $1 }
        return headers
    }

    /// One request; `sink` receives the body piece by piece (nil: collected into `body`). A sink
    /// that throws cancels the transfer and that error is rethrown.
    /// `head` sees the status and headers before the first byte of the body reaches `sink`.
    func perform(_ method: String, _ url: URL, headers extra: [String: String] = [:], timeout: Double,
                 head: ((Int, [String: String]) throws -> Void)? = nil,
                 sink: ((Data) throws -> Void)? = nil) throws -> Response {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        request.httpMethod = method
        for (name, value) in headers(for: url, extra: extra) { request.setValue(value, forHTTPHeaderField: name) }
        let state = TransferState(head: head, sink: sink)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = 7 * 86_400
        configuration.httpMaximumConnectionsPerHost = 1
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        let session = URLSession(configuration: configuration, delegate: state, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let task = session.dataTask(with: request)
        state.task = task
        task.resume()
        state.done.wait()
        if let sinkError = state.sinkError { throw sinkError }
        if let error = state.error { throw Self.describe(error, method: method, url: url, timeout: timeout) }
        guard let http = state.response else {
            throw HubError(.server, "\(method) \(url.absoluteString): no HTTP response", location: url.absoluteString)
        }
        return Response(status: http.statusCode, headers: Self.headers(of: http), url: url, body: state.body)
    }

    static func headers(of response: HTTPURLResponse) -> [String: String] {
        var headers: [String: String] = [:]
        for (key, value) in response.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
        }
        return headers
    }

    /// A transport failure, as the person at the terminal needs to read it.
    static func describe(_ error: any Error, method: String, url: URL, timeout: Double) -> HubError {
        let where_ = url.absoluteString
        var code = (error as? URLError)?.code
        // libcurl's "transfer closed with N bytes remaining to read" comes without a specific code.
        if "\(error) \(error.localizedDescription)".contains("transfer closed") { code = .networkConnectionLost }
        switch code {
        case .some(.timedOut):
            return HubError(.timeout, "\(method) \(where_): no answer for \(Self.format(timeout)) s (timed out; raise HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT for a slow server)", location: where_)
        case .some(.cannotConnectToHost), .some(.cannotFindHost), .some(.dnsLookupFailed), .some(.notConnectedToInternet):
            return HubError(.connection, "\(method) \(where_): cannot connect to the server (\(error.localizedDescription)); is HF_ENDPOINT right and the network up?", location: where_)
        case .some(.networkConnectionLost):
            return HubError(.truncated, "\(method) \(where_): the connection was closed before the body was complete", location: where_)
        default:
            return HubError(.connection, "\(method) \(where_): \(error.localizedDescription)", location: where_)
        }
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}

/// Delegate of one transfer: collects the response, streams or collects the body, refuses redirects.
private final class TransferState: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let head: ((Int, [String: String]) throws -> Void)?
    let sink: ((Data) throws -> Void)?
    let done = DispatchSemaphore(value: 0)
    weak var task: URLSessionTask?
    // Written on the session's serial delegate queue, read after `done` is signalled.
    var response: HTTPURLResponse?
    var body = Data()
    var error: (any Error)?
    var sinkError: (any Error)?

    init(head: ((Int, [String: String]) throws -> Void)?, sink: ((Data) throws -> Void)?) {
        self.head = head
        self.sink = sink
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let http = response as? HTTPURLResponse
        self.response = http
        if let head, let http {
            do { try head(http.statusCode, HubHTTP.headers(of: http)) } catch {
                sinkError = error
                completionHandler(.cancel)
                dataTask.cancel()
                return
            }
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard sinkError == nil else { return }
        // Error bodies (and bodies of non-2xx answers) are collected, never streamed into a file.
        guard let sink, let status = response?.statusCode, (200..<300).contains(status) else {
            if body.count < 1 << 20 { body.append(data) }
            return
        }
        do { try sink(data) } catch {
            sinkError = error
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        completionHandler(nil)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        if sinkError == nil, let error { self.error = error }
        if response == nil, let http = task.response as? HTTPURLResponse { response = http }
        done.signal()
    }
}
