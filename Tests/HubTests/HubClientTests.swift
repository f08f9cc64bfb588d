import Formats
import Foundation
import Hub
import XCTest

/// The client against the local Hub: the cache it writes is huggingface_hub's, downloads resume and
/// verify, and every bad answer is a clear error that leaves no cache entry behind.
final class HubClientTests: XCTestCase {
    let repo = try! HubRepository(HubServer.repository)

    func client(_ server: HubServer, cache: URL, _ extra: [String: String] = [:]) throws -> HubClient {
        HubClient(environment: try HubEnvironment(environment: server.environment(cache: cache, extra)))
    }

    func fetch(_ client: HubClient, _ revisions: [String], patterns: [String]? = nil, jobs: Int = 4) throws -> [HubFetchedRevision] {
        let refs = try client.revisions(repo, revisions)
        return try client.fetch(repo, refs.map { try client.plan(repo, $0, patterns: patterns) }, jobs: jobs)
    }

    func testFetchWritesHuggingFaceHubsCacheLayout() throws {
        let server = try HubServer(self)
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        let client = try client(server, cache: cache)
        let fetched = try fetch(client, ["step0", "step1000", "step2000"])
        XCTAssertEqual(fetched.map { $0.files.map(\.path) }, [
            ["config.json", "model.safetensors"], ["config.json", "pytorch_model.bin"],
            ["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
        ])
        let folder = cache.appendingPathComponent("models--EleutherAI--pythia-mini")
        for revision in fetched {
            // refs/<revision>: the commit, no trailing newline.
            XCTAssertEqual(try String(contentsOf: folder.appendingPathComponent("refs/\(revision.revision)"), encoding: .utf8), revision.commit)
            for file in revision.files {
                let pointer = folder.appendingPathComponent("snapshots/\(revision.commit)/\(file.path)")
                XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: pointer.path), "../../blobs/\(file.etag)")
                let original = HubServer.suite.appendingPathComponent("\(revision.revision)/\(file.path)")
                XCTAssertEqual(try Data(contentsOf: pointer), try Data(contentsOf: original), file.path)
                if file.path.hasSuffix(".safetensors") || file.path.hasSuffix(".bin") {
                    XCTAssertEqual(file.etag, try sha256(of: original), "an LFS blob is named by its sha256")
                }
            }
        }
        let blobs = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("blobs").path)
        XCTAssertFalse(blobs.contains { $0.hasSuffix(".incomplete") })
        XCTAssertEqual(blobs.count, 6, "one config blob shared by the three revisions, four weight blobs, one index: \(blobs)")

        // The engine finds them by name, and loads them.
        let environment = server.environment(cache: cache)
        let located = try ModelLocator.resolve("EleutherAI/pythia-mini@step2000", environment: environment)
        XCTAssertEqual(located.lastPathComponent, fetched[2].commit)
        XCTAssertEqual(try Checkpoint(directory: located).layout, .shardedSafetensors(shards: 2))

        // A second fetch transfers nothing.
        let again = try fetch(client, ["step0"])
        XCTAssertEqual(again[0].downloaded, 0)
        XCTAssertTrue(again[0].files.allSatisfy(\.wasCached))
    }

    func testDroppedBodyResumesWithARangeRequest() throws {
        let server = try HubServer(self)
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        try server.control("fault=drop&match=/cdn/&count=1&bytes=5000000")
        let fetched = try fetch(try client(server, cache: cache), ["step0"], patterns: ["model.safetensors"])
        let file = try XCTUnwrap(fetched.first?.files.first)
        XCTAssertEqual(file.etag, try sha256(of: HubServer.suite.appendingPathComponent("step0/model.safetensors")))
        let gets = try server.log().filter { $0.method == "GET" && $0.path.hasPrefix("/cdn/") }
        XCTAssertEqual(gets.map(\.range), [nil, "bytes=5000000-"], "one cut body, then the rest asked for with Range")
    }

    func testBodyCutEveryTimeKeepsTheIncompleteFileAndTheNextFetchResumes() throws {
        let server = try HubServer(self)
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        let client = try client(server, cache: cache)
        try server.control("fault=drop&match=/cdn/&bytes=3000000")
        XCTAssertThrowsError(try fetch(client, ["step4"], patterns: ["model.safetensors"])) { error in
            XCTAssertEqual((error as? HubError)?.kind, .truncated, "\(error)")
            let text = "\(error)"
            XCTAssertTrue(text.contains("/cdn/") && text.contains("model.safetensors") && text.contains("step4") && text.contains(".incomplete"), text)
        }
        let blobs = cache.appendingPathComponent("models--EleutherAI--pythia-mini/blobs")
        let names = try FileManager.default.contentsOfDirectory(atPath: blobs.path)
        XCTAssertEqual(names.count, 1)
        XCTAssertTrue(names[0].hasSuffix(".incomplete"), "\(names)")
        let partial = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: blobs.appendingPathComponent(names[0]).path)[.size] as? Int)
        XCTAssertEqual(partial, 9_000_000, "three attempts of 3 MB each, appended")
        let snapshots = cache.appendingPathComponent("models--EleutherAI--pythia-mini/snapshots")
        let links = (try? FileManager.default.subpathsOfDirectory(atPath: snapshots.path)) ?? []
        XCTAssertFalse(links.contains { $0.hasSuffix("model.safetensors") }, "no snapshot link to a blob that does not exist: \(links)")

        try server.control("reset=1")
        let fetched = try fetch(client, ["step4"], patterns: ["model.safetensors"])
        XCTAssertEqual(fetched[0].files[0].downloaded, 13_283_712 - 9_000_000)
        XCTAssertEqual(try server.log().filter { $0.path.hasPrefix("/cdn/") }.map(\.range), ["bytes=9000000-"])
        XCTAssertEqual(try sha256(of: blobs.appendingPathComponent(fetched[0].files[0].etag)), fetched[0].files[0].etag)
    }

    /// A body that stops arriving (the server holds the connection open, sending nothing) times out
    /// after HF_HUB_DOWNLOAD_TIMEOUT, keeps what arrived, and resumes with Range; when it stalls
    /// on every attempt the error says so and names the timeout's variable.
    func testStalledBodyTimesOutAndResumes() throws {
        let server = try HubServer(self)
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        let client = try client(server, cache: cache, ["HF_HUB_DOWNLOAD_TIMEOUT": "1"])
        try server.control("fault=stall&match=/cdn/&count=1&bytes=4000000&seconds=4")
        let fetched = try fetch(client, ["step0"], patterns: ["model.safetensors"])
        XCTAssertEqual(fetched[0].files[0].etag, try sha256(of: HubServer.suite.appendingPathComponent("step0/model.safetensors")))
        XCTAssertEqual(try server.log().filter { $0.method == "GET" && $0.path.hasPrefix("/cdn/") }.map(\.range),
                       [nil, "bytes=4000000-"], "one stalled body, then the rest asked for with Range")

        try server.control("reset=1")
        try server.control("fault=stall&match=/cdn/&bytes=2000000&seconds=4")
        XCTAssertThrowsError(try fetch(client, ["step4"], patterns: ["model.safetensors"])) { error in
            XCTAssertEqual((error as? HubError)?.kind, .timeout, "\(error)")
            let text = "\(error)"
            XCTAssertTrue(text.contains("HF_HUB_DOWNLOAD_TIMEOUT") && text.contains("model.safetensors") && text.contains(".incomplete"), text)
        }
    }

    func testWrongHashIsRefusedAndNothingEntersBlobs() throws {
        let server = try HubServer(self)
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        try server.control("fault=wronghash&match=/cdn/")
        XCTAssertThrowsError(try fetch(try client(server, cache: cache), ["step16"])) { error in
            XCTAssertEqual((error as? HubError)?.kind, .hashMismatch, "\(error)")
            let text = "\(error)"
            XCTAssertTrue(text.contains("sha256") && text.contains("model.safetensors") && text.contains("step16") && text.contains("/cdn/"), text)
        }
        let folder = cache.appendingPathComponent("models--EleutherAI--pythia-mini")
        let blobs = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("blobs").path)
        XCTAssertFalse(blobs.contains { $0.count == 64 || $0.hasSuffix(".incomplete") }, "no weight blob, complete or partial: \(blobs)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("refs/step16").path), "no ref to a revision not fetched")
    }

    func testMissingRevisionAndMissingFileAreToldApart() throws {
        let server = try HubServer(self)
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        let client = try client(server, cache: cache)
        XCTAssertThrowsError(try fetch(client, ["step7"])) { error in
            XCTAssertEqual((error as? HubError)?.kind, .revisionNotFound, "\(error)")
            XCTAssertTrue("\(error)".contains("'step7'"), "\(error)")
        }
        let downloader = client.downloader
        XCTAssertThrowsError(try downloader.fetch(repo, revision: "step0", file: "tokenizer.json")) { error in
            XCTAssertEqual((error as? HubError)?.kind, .fileNotFound, "\(error)")
            XCTAssertTrue("\(error)".contains("tokenizer.json") && "\(error)".contains("step0") && "\(error)".contains("/resolve/step0/"), "\(error)")
        }
        XCTAssertThrowsError(try downloader.fetch(repo, revision: "step9", file: "config.json")) { error in
            XCTAssertEqual((error as? HubError)?.kind, .revisionNotFound, "\(error)")
        }
        // A bare 404 (no X-Error-Code): the client asks for the revision to say which is missing.
        try server.control("fault=notfound&match=/resolve/")
        XCTAssertThrowsError(try downloader.fetch(repo, revision: "step0", file: "config.json")) { error in
            XCTAssertEqual((error as? HubError)?.kind, .fileNotFound, "\(error)")
            XCTAssertTrue("\(error)".contains("file 'config.json' not found"), "\(error)")
        }
        XCTAssertThrowsError(try HubClient(environment: HubEnvironment(environment: server.environment(cache: cache)))
            .revisions(try HubRepository("EleutherAI/no-such-model"), ["main"])) { error in
            XCTAssertEqual((error as? HubError)?.kind, .repositoryNotFound, "\(error)")
        }
    }

    func testGatedRepositoryNeedsAToken() throws {
        let server = try HubServer(self)
        let scratch = try scratchDirectory(self)
        let cache = scratch.appendingPathComponent("hub")
        try server.control("fault=gated&token=hf_secret")
        XCTAssertThrowsError(try fetch(try client(server, cache: cache), ["step0"])) { error in
            XCTAssertEqual((error as? HubError)?.kind, .unauthorized, "\(error)")
            XCTAssertTrue("\(error)".contains("gated") && "\(error)".contains("HF_TOKEN") && "\(error)".contains("/api/models/EleutherAI/pythia-mini/refs"), "\(error)")
        }
        XCTAssertEqual(try fetch(try client(server, cache: cache, ["HF_TOKEN": "hf_secret"]), ["step0"]).count, 1)
        // The token file, as `huggingface-cli login` writes it.
        let home = scratch.appendingPathComponent("hf-home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        try "hf_secret".write(to: home.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try fetch(try client(server, cache: cache), ["step4"]).count, 1)
        // The CDN never sees the token.
        XCTAssertTrue(try server.log().filter { $0.path.hasPrefix("/cdn/") }.count >= 1)
    }

    func testConnectionRefusedAndTimeoutNameTheURL() throws {
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        // A port nothing listens on: bind one, close it.
        let refused = HubClient(environment: try HubEnvironment(environment: ["HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": cache.path]))
        XCTAssertThrowsError(try refused.revisions(repo, ["step0"])) { error in
            XCTAssertEqual((error as? HubError)?.kind, .connection, "\(error)")
            XCTAssertTrue("\(error)".contains("http://127.0.0.1:9/api/models/EleutherAI/pythia-mini/refs"), "\(error)")
        }
        let server = try HubServer(self)
        try server.control("fault=slow&match=/refs&seconds=3")
        let slow = try client(server, cache: cache, ["HF_HUB_ETAG_TIMEOUT": "1"])
        XCTAssertThrowsError(try slow.revisions(repo, ["step0"])) { error in
            XCTAssertEqual((error as? HubError)?.kind, .timeout, "\(error)")
            XCTAssertTrue("\(error)".contains("/refs") && "\(error)".contains("HF_HUB_ETAG_TIMEOUT"), "\(error)")
        }
    }

    func testFullDiskIsRefusedBeforeWriting() throws {
        let server = try HubServer(self)
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        var client = try client(server, cache: cache)
        client.downloader.freeSpace = { _ in 1_000_000 }
        XCTAssertThrowsError(try fetch(client, ["step0"], patterns: ["model.safetensors"])) { error in
            XCTAssertEqual((error as? HubError)?.kind, .diskFull, "\(error)")
            XCTAssertTrue("\(error)".contains("13283712") && "\(error)".contains("model.safetensors"), "\(error)")
        }
        let blobs = cache.appendingPathComponent("models--EleutherAI--pythia-mini/blobs")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: blobs.path), [])
    }

    /// A write that fails for want of space (the partial file is /dev/full, which refuses every
    /// write with ENOSPC) is a disk-full error naming the file, not a generic I/O failure.
    func testOutOfSpaceWhileWritingIsADiskFullError() throws {
        let server = try HubServer(self)
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        let blobs = cache.appendingPathComponent("models--EleutherAI--pythia-mini/blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        let etag = try sha256(of: HubServer.suite.appendingPathComponent("step0/model.safetensors"))
        try FileManager.default.createSymbolicLink(atPath: blobs.appendingPathComponent("\(etag).incomplete").path, withDestinationPath: "/dev/full")
        XCTAssertThrowsError(try fetch(try client(server, cache: cache), ["step0"], patterns: ["model.safetensors"])) { error in
            XCTAssertEqual((error as? HubError)?.kind, .diskFull, "\(error)")
            XCTAssertTrue("\(error)".contains("disk is full") && "\(error)".contains("\(etag).incomplete"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: blobs.appendingPathComponent(etag).path), "nothing entered blobs/")
    }

    func testOfflineReadsTheCacheOnly() throws {
        let server = try HubServer(self)
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        _ = try fetch(try client(server, cache: cache), ["step0"])
        let offline = try client(server, cache: cache, ["HF_HUB_OFFLINE": "1"])
        try server.control("reset=1")
        let fetched = try fetch(offline, ["step0"])
        XCTAssertEqual(fetched[0].files.map(\.path), ["config.json", "model.safetensors"])
        XCTAssertThrowsError(try fetch(offline, ["step4"])) { error in
            XCTAssertEqual((error as? HubError)?.kind, .offline, "\(error)")
            XCTAssertTrue("\(error)".contains("HF_HUB_OFFLINE") && "\(error)".contains("step4"), "\(error)")
        }
        XCTAssertEqual(try server.log().count, 0, "offline means no request")
    }

    func testRenamedRepositoryFollowsTheRelativeRedirect() throws {
        let server = try HubServer(self, arguments: ["--renamed", "EleutherAI/pythia-mini-old"])
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        let client = try client(server, cache: cache)
        let meta = try client.downloader.metadata(try HubRepository("EleutherAI/pythia-mini-old"), revision: "step0", file: "model.safetensors")
        XCTAssertEqual(meta.etag, try sha256(of: HubServer.suite.appendingPathComponent("step0/model.safetensors")))
        XCTAssertTrue(meta.location.path.hasPrefix("/cdn/"), "the absolute CDN redirect is not followed by the HEAD: \(meta.location)")
        XCTAssertEqual(meta.size, 13_283_712)
    }

    func testAuditFindsBranchesServingAnotherStepsWeightsAndOutOfOrderDistances() throws {
        // As broken Pythia branches do: step512 serves the final weights.
        let server = try HubServer(self, arguments: ["--alias", "step512=step2000"])
        let cache = try scratchDirectory(self).appendingPathComponent("hub")
        let client = try client(server, cache: cache)
        let refs = try client.revisions(repo, ["all"])
        var rows = HubAudit.rows(try refs.map { try client.plan(repo, $0) })
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0.revision, $0) })
        XCTAssertEqual(byName["step512"]?.identicalTo, ["main", "step2000"])
        XCTAssertEqual(byName["step256"]?.identicalTo, [])
        XCTAssertEqual(try server.log().filter { $0.path.hasPrefix("/cdn/") || $0.path.contains("/resolve/") }.count, 0, "no download for the hash audit")

        // Both blobs of the shared shards are fetched once, by parallel jobs.
        let plans = try refs.filter { ["step0", "step256", "step512", "step1000", "step2000"].contains($0.name) }.map { try client.plan(repo, $0) }
        _ = try client.fetch(repo, plans, jobs: 4)
        XCTAssertEqual(try server.log().filter { $0.method == "GET" && $0.path.hasPrefix("/cdn/") }.count, 5, "step0, step256, step1000 and the two shards")
        let snapshots = Dictionary(uniqueKeysWithValues: plans.map { ($0.revision, cache.appendingPathComponent("models--EleutherAI--pythia-mini/snapshots/\($0.commit)")) })
        try HubAudit.addDistances(&rows, snapshots: snapshots)
        let distances = Dictionary(uniqueKeysWithValues: rows.compactMap { row in row.distanceFromStep0.map { (row.revision, $0) } })
        XCTAssertEqual(distances["step0"], 0)
        XCTAssertEqual(distances["step512"], distances["step2000"])
        XCTAssertGreaterThan(distances["step512"]!, distances["step1000"]!)
        XCTAssertEqual(rows.filter { $0.outOfOrderWith != nil }.map(\.revision), ["step512"])
        XCTAssertEqual(rows.first { $0.revision == "step512" }?.outOfOrderWith, "step1000")
    }
}
