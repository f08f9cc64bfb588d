import Foundation
import TestSupport
import XCTest

/// The local Hub (`hub_server.py`, Python's standard library only) serving pythia-mini from
/// ../shared on a free loopback port, started for one test and stopped when it ends.
final class HubServer {
    static let script = RepositoryPaths.root.appendingPathComponent("Tests/HubTests/hub_server.py")
    static let suite = RepositoryPaths.shared.appendingPathComponent("models/pythia-mini")
    static let repository = "EleutherAI/pythia-mini"

    let process: Process
    let endpoint: String

    /// Skips when ../shared or python3 is absent.
    init(_ test: XCTestCase, arguments: [String] = []) throws {
        guard FileManager.default.fileExists(atPath: Self.suite.appendingPathComponent("step0/config.json").path) else {
            throw XCTSkip("needs ../shared (\(Self.suite.path) is absent)")
        }
        guard let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("needs python3 for the local Hub server")
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [Self.script.path, "--root", Self.suite.path, "--repo", Self.repository] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // The first line says where it listens.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "http://") else {
            process.terminate()
            throw XCTSkip("the local Hub server did not start: \(text)")
        }
        endpoint = String(text[range.lowerBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
        let process = process
        test.addTeardownBlock {
            process.terminate()
            process.waitUntilExit()
        }
    }

    /// `/_control?…`: sets a fault (see hub_server.py) or, with `reset=1`, clears them and the log.
    func control(_ query: String) throws {
        _ = try Data(contentsOf: URL(string: endpoint + "/_control?" + query)!)
    }

    /// The requests seen: (method, path, Range header).
    func log() throws -> [(method: String, path: String, range: String?)] {
        let data = try Data(contentsOf: URL(string: endpoint + "/_control/log")!)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[Any]])
        return rows.map { ($0[0] as? String ?? "", $0[1] as? String ?? "", $0[2] as? String) }
    }

    /// The environment a client needs to use this server with a cache in `cache`.
    func environment(cache: URL, _ extra: [String: String] = [:]) -> [String: String] {
        ["HF_ENDPOINT": endpoint, "HF_HUB_CACHE": cache.path, "HF_HOME": cache.deletingLastPathComponent().appendingPathComponent("hf-home").path,
         "HF_TOKEN": "", "HF_HUB_OFFLINE": "", "HF_HUB_ETAG_TIMEOUT": "10", "HF_HUB_DOWNLOAD_TIMEOUT": "10"].merging(extra) { $1 }
    }
}

/// A fresh scratch directory, removed when the test ends.
func scratchDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("neoxprobe-hub-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// sha256 of a file's bytes.
func sha256(of url: URL) throws -> String {
    SHA256.hex([UInt8](try Data(contentsOf: url)))
}
