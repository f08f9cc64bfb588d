import Foundation
import TestSupport
import XCTest
@testable import Formats

/// `--model` resolution against a fake Hugging Face cache built in a scratch folder, with snapshots
/// symlinked to the tiny fixture and (when present) a real pythia-mini step.
final class ModelLocatorTests: XCTestCase {
    private var scratch: URL!
    private var hub: URL!
    private var repository: URL!
    private var environment: [String: String] = [:]
    private let fileManager = FileManager.default
    private let tiny = CheckpointFixtures.url("tiny-safetensors")

    override func setUpWithError() throws {
        scratch = try makeScratchDirectory("neox-locator")
        hub = scratch.appendingPathComponent("hf/hub")
        repository = hub.appendingPathComponent("models--EleutherAI--pythia-mini")
        environment = ["HF_HUB_CACHE": hub.path, "HOME": scratch.path]
    }

    override func tearDownWithError() throws { try? fileManager.removeItem(at: scratch) }

    /// Adds `refs/<ref>` → `snapshots/<hash>` (a symlink to `target`), as huggingface_hub lays it out.
    private func addRevision(_ ref: String?, hash: String, target: URL) throws {
        let snapshots = repository.appendingPathComponent("snapshots")
        try fileManager.createDirectory(at: snapshots, withIntermediateDirectories: true)
        let snapshot = snapshots.appendingPathComponent(hash)
        if !fileManager.fileExists(atPath: snapshot.path) {
            try fileManager.createSymbolicLink(at: snapshot, withDestinationURL: target)
        }
        if let ref {
            let file = repository.appendingPathComponent("refs").appendingPathComponent(ref)
            try fileManager.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(hash.utf8).write(to: file)
        }
    }

    private func resolve(_ spec: String) throws -> URL {
        try ModelLocator.resolve(spec, modelFolders: [scratch.appendingPathComponent("Models")], environment: environment, currentDirectory: scratch)
    }

    func testRevisionInCacheLoads() throws {
        try CheckpointFixtures.requirePythiaMini()
        let step1000 = CheckpointFixtures.pythiaMini.appendingPathComponent("step1000")
        let hash = String(repeating: "ab", count: 20)
        try addRevision("step1000", hash: hash, target: step1000)
        try addRevision("main", hash: String(repeating: "cd", count: 20), target: tiny)

        let resolved = try resolve("EleutherAI/pythia-mini@step1000")
        XCTAssertEqual(resolved.lastPathComponent, hash)
        XCTAssertEqual(resolved.deletingLastPathComponent().deletingLastPathComponent().path, repository.path)
        let checkpoint = try Checkpoint(directory: resolved)
        XCTAssertEqual(checkpoint.layout, .pytorchBin)
        XCTAssertEqual(Set(checkpoint.entries.keys), Set(try Checkpoint(directory: step1000).entries.keys))
    }

    func testDefaultRevisionIsMainAndHashWorksDirectly() throws {
        let mainHash = String(repeating: "cd", count: 20)
        try addRevision("main", hash: mainHash, target: tiny)
        XCTAssertEqual(try resolve("EleutherAI/pythia-mini").lastPathComponent, mainHash)
        XCTAssertEqual(try resolve("EleutherAI/pythia-mini@main").lastPathComponent, mainHash)
        let other = String(repeating: "ef", count: 20)
        try addRevision(nil, hash: other, target: tiny)
        XCTAssertEqual(try resolve("EleutherAI/pythia-mini@\(other)").lastPathComponent, other)
    }

    /// Every environment combination resolves where the real huggingface_hub puts its cache
    /// (Tests/Fixtures/locator/hub_cache.json, written by generate_locator.py).
    func testCacheRootFromEnvironmentMatchesHuggingFaceHub() throws {
        let url = RepositoryPaths.fixtures("locator").appendingPathComponent("hub_cache.json")
        let fixture = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let cases = try XCTUnwrap(fixture["cases"] as? [[String: Any]])
        XCTAssertGreaterThan(cases.count, 5)
        for entry in cases {
            let environment = try XCTUnwrap(entry["environment"] as? [String: String])
            let expected = try XCTUnwrap(entry["hub_cache"] as? String)
            XCTAssertEqual(ModelLocator.cacheRoot(environment: environment).path, expected, "\(environment)")
        }
    }

    func testRevisionsListNaturalOrderAndSkipMissingSnapshots() throws {
        for (i, step) in ["step512", "step4", "step1000", "main"].enumerated() {
            try addRevision(step, hash: String(repeating: String(i), count: 40), target: tiny)
        }
        try addRevision("pr/1", hash: String(repeating: "9", count: 40), target: tiny)
        // A ref whose snapshot was deleted is not listed.
        let dangling = repository.appendingPathComponent("refs/step8")
        try Data(String(repeating: "7", count: 40).utf8).write(to: dangling)

        let revisions = try ModelLocator.revisions(cacheRepo: repository)
        XCTAssertEqual(revisions.map(\.revision), ["main", "pr/1", "step4", "step512", "step1000"])
        for (revision, directory) in revisions {
            XCTAssertEqual(try resolve("EleutherAI/pythia-mini@\(revision)").path, directory.path)
        }
        XCTAssertEqual(ModelLocator.cacheRepository("EleutherAI/pythia-mini", environment: environment)?.path, repository.path)
        XCTAssertNil(ModelLocator.cacheRepository("EleutherAI/pythia-70m", environment: environment))
        XCTAssertNil(ModelLocator.cacheRepository("not-an-id", environment: environment))
    }

    func testRevisionsOfNonCacheFolder() {
        assertFormatError(try ModelLocator.revisions(cacheRepo: scratch), kind: .malformed, path: scratch.lastPathComponent, ["refs/"])
    }

    func testMissingRevisionListsWhatExists() throws {
        try addRevision("step4", hash: String(repeating: "1", count: 40), target: tiny)
        try addRevision("step16", hash: String(repeating: "2", count: 40), target: tiny)
        assertFormatError(try resolve("EleutherAI/pythia-mini@step999"), kind: .notFound,
                        ["step999", "refs/step999", "Models/", "step4, step16"])
    }

    func testRefToMissingSnapshot() throws {
        try addRevision("main", hash: String(repeating: "1", count: 40), target: tiny)
        let ref = repository.appendingPathComponent("refs/step4")
        try Data(String(repeating: "3", count: 40).utf8).write(to: ref)
        assertFormatError(try resolve("EleutherAI/pythia-mini@step4"), kind: .notFound, path: String(repeating: "3", count: 40),
                        ["step4", "snapshot", "missing"])
    }

    func testModelNotInCache() {
        assertFormatError(try resolve("EleutherAI/pythia-70m"), kind: .notFound,
                        ["EleutherAI/pythia-70m", "models--EleutherAI--pythia-70m", "Models/pythia-70m"])
    }

    func testLocalModelsFolder() throws {
        let models = scratch.appendingPathComponent("Models")
        let plain = models.appendingPathComponent("pythia-mini")
        let revision = models.appendingPathComponent("EleutherAI--pythia-mini/step64")
        try fileManager.createDirectory(at: models.appendingPathComponent("EleutherAI--pythia-mini"), withIntermediateDirectories: true)
        try fileManager.createSymbolicLink(at: plain, withDestinationURL: tiny)
        try fileManager.createSymbolicLink(at: revision, withDestinationURL: tiny)
        XCTAssertEqual(try resolve("EleutherAI/pythia-mini").path, plain.path)
        XCTAssertEqual(try resolve("EleutherAI/pythia-mini@step64").path, revision.path)
        // The cache takes precedence when it has the revision.
        try addRevision("main", hash: String(repeating: "4", count: 40), target: tiny)
        XCTAssertEqual(try resolve("EleutherAI/pythia-mini").lastPathComponent, String(repeating: "4", count: 40))
    }

    func testDirectoryPaths() throws {
        XCTAssertEqual(try resolve(tiny.path).path, tiny.standardizedFileURL.path)
        let relative = scratch.appendingPathComponent("some/model")
        try fileManager.createDirectory(at: relative, withIntermediateDirectories: true)
        XCTAssertEqual(try resolve("some/model").path, relative.path)
        XCTAssertEqual(try resolve("~/some/model").path, relative.path)
        assertFormatError(try resolve(tiny.appendingPathComponent("config.json").path), kind: .notFound, path: "config.json", ["is a file"])
        assertFormatError(try resolve("/nonexistent/deep/path"), kind: .notFound, path: "/nonexistent/deep/path", ["does not exist"])
        assertFormatError(try resolve(""), kind: .invalidArgument, ["empty"])
    }

    func testRepositoryIDParsing() {
        XCTAssertEqual(ModelLocator.RepositoryID("EleutherAI/pythia-160m-deduped@step143000")?.revision, "step143000")
        XCTAssertEqual(ModelLocator.RepositoryID("EleutherAI/pythia-160m")?.name, "pythia-160m")
        XCTAssertNil(ModelLocator.RepositoryID("EleutherAI/pythia-160m@"))
        XCTAssertNil(ModelLocator.RepositoryID("a/b/c"))
        XCTAssertNil(ModelLocator.RepositoryID("../b"))
        XCTAssertNil(ModelLocator.RepositoryID("a/b@../../etc"))
    }
}
