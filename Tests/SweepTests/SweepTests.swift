import Corpus
import Formats
import Foundation
import NeoX
import ProbeStats
import Results
import TestSupport
import Tokenizers
import XCTest
@testable import Sweep

/// Shared setup for the sweep tests: the real pythia-mini suite and data in ../shared.
enum SweepFixture {
    static let suite = ProbeFixtures.pythiaMini
    static let dataset = ProbeFixtures.shared.appendingPathComponent("data/minipile/document").path
    static let lambada = ProbeFixtures.shared.appendingPathComponent("data/lambada/lambada_test.jsonl").path
    static let tokenizer = ProbeFixtures.shared.appendingPathComponent("tokenizer/20B_tokenizer.json").path
    static let expectedURL = RepositoryPaths.fixtures("sweep").appendingPathComponent("expected.json")

    static func requireShared() throws {
        guard FileManager.default.fileExists(atPath: suite.path), FileManager.default.fileExists(atPath: dataset + ".idx") else {
            throw XCTSkip("no pythia-mini suite / minipile at \(ProbeFixtures.shared.path)")
        }
    }

    static func temporaryDirectory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("neoxprobe-sweep-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The evaluation set of generate_sweep.py: rows 0..1, first 256 tokens.
    static func options(output: URL, probes: [SweepProbe]) -> SweepOptions {
        var options = SweepOptions(suite: suite.path, data: .rows(prefix: dataset, rows: 0..<2, sequenceLength: 256),
                                   probes: probes, output: output)
        options.lambadaData = lambada
        options.lambadaLimit = 20
        options.tokenizer = tokenizer
        options.verbose = false
        return options
    }

    static func sweepArguments(output: URL) -> [String] {
        ["sweep", "--suite", suite.path, "--data", dataset, "--rows", "0:2", "--seq-len", "256",
         "--probes", "outliers,cka,weights", "--out", output.path, "--quiet"]
    }
}

/// The whole pythia-mini suite through the sweep vs PyTorch/HF (generate_sweep.py).
final class SweepParityTests: XCTestCase {
    func testFullSuiteMatchesTorchReference() throws {
        try SweepFixture.requireShared()
        let data = try Data(contentsOf: SweepFixture.expectedURL)
        let fixture = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let expectedRows = try XCTUnwrap(fixture["rows"] as? [[Any]])
        let expectedTokens = try XCTUnwrap(fixture["tokens"] as? [[Int]])

        // Same evaluation tokens as the reference script.
        let spec = SweepDataSpec.rows(prefix: SweepFixture.dataset, rows: 0..<2, sequenceLength: 256)
        XCTAssertEqual(try spec.load(tokenizer: nil, contextLimit: 2048).map { $0.map(Int.init) }, expectedTokens)

        let output = try SweepFixture.temporaryDirectory("parity")
        defer { try? FileManager.default.removeItem(at: output) }
        var options = SweepFixture.options(output: output, probes: SweepProbe.allCases)
        options.keepCache = true   // inspected below (removed on completion by default)
        let summary = try SweepRunner(options: options).run()
        XCTAssertEqual(summary.processedSteps.first, 2000, "the CKA reference checkpoint runs first")
        XCTAssertEqual(Set(summary.processedSteps), [0, 4, 16, 64, 256, 512, 1000, 2000])
        XCTAssertTrue(summary.identical.isEmpty)

        let rows = try MetricsCSV.read(contentsOf: output.appendingPathComponent("metrics.csv"))
        var measured: [String: Double] = [:]
        func key(_ step: Int, _ layer: Int?, _ site: String, _ metric: String) -> String { "\(step)|\(layer ?? -1)|\(site)|\(metric)" }
        for row in rows { measured[key(row.step, row.layer, row.site, row.metric)] = row.value }
        // Where other elements lie within the fixture's near_tie_relative of a maximum, either
        // engine (or one engine on two CPUs) may pick any of them: accept every near tie.
        let nearTies = fixture["near_ties"] as? [String: [String: Any]] ?? [:]
        func isNearTie(step: Int, layer: Int, site: String, metric: String, actual: Double) -> Bool {
            guard let ties = nearTies["\(step)|\(layer)|\(site)"] else { return false }
            if metric == "argmax_token" || metric == "argmax_dim" {
                guard let pairs = ties["argmax"] as? [[Int]],
                      let token = measured[key(step, layer, site, "argmax_token")],
                      let dim = measured[key(step, layer, site, "argmax_dim")] else { return false }
                return pairs.contains([Int(token), Int(dim)])
            }
            return (ties[metric] as? [Int])?.contains(Int(actual)) ?? false
        }
        var compared = 0
        for row in expectedRows {
            let step = try XCTUnwrap(row[0] as? Int), layer = row[1] as? Int
            let site = try XCTUnwrap(row[2] as? String), metric = try XCTUnwrap(row[3] as? String)
            let expected = try XCTUnwrap((row[4] as? NSNumber)?.doubleValue)
            guard let actual = measured[key(step, layer, site, metric)] else {
                XCTFail("sweep wrote no \(metric) for \(site) layer \(layer.map(String.init) ?? "-") step \(step)")
                continue
            }
            if metric.hasSuffix("_dim") || metric.hasSuffix("_token") || metric.hasSuffix("tokens") || metric == "token_count" {
                if actual != expected, let layer, isNearTie(step: step, layer: layer, site: site, metric: metric, actual: actual) {
                    compared += 1
                    continue
                }
                XCTAssertEqual(actual, expected, "\(site) layer \(layer ?? -1) \(metric) step \(step)")
            } else {
                assertClose(actual, expected, "\(site) layer \(layer ?? -1) \(metric) step \(step)")
            }
            compared += 1
        }
        XCTAssertEqual(compared, expectedRows.count)

        // Layout: one file per checkpoint and probe; metrics.csv is their concatenation.
        let stepFolder = output.appendingPathComponent("steps/step000512")
        for probe in SweepProbe.allCases {
            XCTAssertTrue(FileManager.default.fileExists(atPath: stepFolder.appendingPathComponent(probe.fileName).path), probe.rawValue)
        }
        XCTAssertEqual(rows.map(\.step), rows.map(\.step).sorted(), "metrics.csv is ordered by step")
        let run = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("run.json"))) as? [String: Any])
        XCTAssertEqual(run["status"] as? String, "complete")
        XCTAssertEqual((run["steps"] as? [[String: Any]])?.count, 8)
        let layouts = Set(((run["steps"] as? [[String: Any]]) ?? []).compactMap { $0["layout"] as? String })
        XCTAssertEqual(layouts.count, 3, "the three weight layouts are recorded: \(layouts)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: output.appendingPathComponent(".reference/complete.json").path))
    }
}

/// Interruption, resumption, refusal of mixed options, identical checkpoints, input errors.
final class SweepResumeTests: XCTestCase {
    private func runBinary(_ arguments: [String]) throws -> Process {
        try CommandRunner.start(arguments)
    }

    func testKilledSweepResumesToIdenticalMetrics() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("kill")
        defer { try? FileManager.default.removeItem(at: root) }
        let whole = root.appendingPathComponent("whole"), killed = root.appendingPathComponent("killed")

        let uninterrupted = try runBinary(SweepFixture.sweepArguments(output: whole))
        uninterrupted.waitUntilExit()
        XCTAssertEqual(uninterrupted.terminationStatus, 0)

        let victim = try runBinary(SweepFixture.sweepArguments(output: killed))
        let steps = killed.appendingPathComponent("steps")
        let deadline = Date().addingTimeInterval(120)
        func finishedFiles() -> Int {
            let folders = (try? FileManager.default.contentsOfDirectory(atPath: steps.path)) ?? []
            return folders.reduce(0) { count, folder in
                count + ((try? FileManager.default.contentsOfDirectory(atPath: steps.appendingPathComponent(folder).path)) ?? [])
                    .filter { $0.hasSuffix(".csv") }.count
            }
        }
        while finishedFiles() == 0 && victim.isRunning && Date() < deadline { usleep(1000) }
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        XCTAssertEqual(victim.terminationReason, .uncaughtSignal, "the sweep finished before it could be killed")
        let completeAfterKill = ((try? FileManager.default.contentsOfDirectory(atPath: steps.path)) ?? []).filter {
            FileManager.default.fileExists(atPath: steps.appendingPathComponent($0).appendingPathComponent("weights.csv").path)
        }.count
        XCTAssertLessThan(completeAfterKill, 8)

        let resumed = try runBinary(SweepFixture.sweepArguments(output: killed))
        resumed.waitUntilExit()
        XCTAssertEqual(resumed.terminationStatus, 0)
        let expected = try Data(contentsOf: whole.appendingPathComponent("metrics.csv"))
        let actual = try Data(contentsOf: killed.appendingPathComponent("metrics.csv"))
        XCTAssertEqual(actual, expected, "metrics.csv after kill -9 and resume differs from an uninterrupted run")
        XCTAssertGreaterThan(expected.count, 1000)
    }

    func testRerunSkipsFinishedAndRecomputesMissingReferenceCache() throws {
        try SweepFixture.requireShared()
        let output = try SweepFixture.temporaryDirectory("skip")
        defer { try? FileManager.default.removeItem(at: output) }
        var options = SweepFixture.options(output: output, probes: [.outliers, .cka, .weights])
        options.steps = "0,64,2000"
        options.keepCache = true   // this test damages and resumes from the cache
        let first = try SweepRunner(options: options).run()
        XCTAssertEqual(first.processedSteps, [2000, 0, 64])
        let metricsURL = output.appendingPathComponent("metrics.csv")
        let original = try Data(contentsOf: metricsURL)

        let again = try SweepRunner(options: options).run()
        XCTAssertEqual(again.processedSteps, [])
        XCTAssertEqual(again.skippedSteps, [0, 64, 2000])
        XCTAssertEqual(try Data(contentsOf: metricsURL), original)

        // Lose one checkpoint's CKA file and the reference cache: only that work is redone.
        try FileManager.default.removeItem(at: output.appendingPathComponent("steps/step000064/cka.csv"))
        try FileManager.default.removeItem(at: output.appendingPathComponent(".reference"))
        let repaired = try SweepRunner(options: options).run()
        XCTAssertEqual(repaired.processedSteps, [2000, 64], "reference recomputed for its activations, then step 64")
        XCTAssertEqual(try Data(contentsOf: metricsURL), original)

        // A truncated cache file is detected (size check) and rebuilt too.
        try FileManager.default.removeItem(at: output.appendingPathComponent("steps/step000000/cka.csv"))
        let cacheFile = output.appendingPathComponent(".reference/blocks.1.hook_mlp_out.f32")
        try Data(try Data(contentsOf: cacheFile).prefix(100)).write(to: cacheFile)
        let rebuilt = try SweepRunner(options: options).run()
        XCTAssertEqual(rebuilt.processedSteps, [2000, 0])
        XCTAssertEqual(try Data(contentsOf: metricsURL), original)

        // Extending the sweep with more steps is allowed (steps are not part of the fingerprint).
        options.steps = "0,16,64,2000"
        let extended = try SweepRunner(options: options).run()
        XCTAssertEqual(extended.processedSteps, [16])
    }

    func testChangedOptionsAreRefused() throws {
        try SweepFixture.requireShared()
        let output = try SweepFixture.temporaryDirectory("refuse")
        defer { try? FileManager.default.removeItem(at: output) }
        var options = SweepFixture.options(output: output, probes: [.outliers])
        options.steps = "0,4"
        _ = try SweepRunner(options: options).run()

        var changedData = options
        changedData.data = .rows(prefix: SweepFixture.dataset, rows: 0..<2, sequenceLength: 128)
        var changedTopK = options
        changedTopK.topK = 3
        for (label, variant) in [("data", changedData), ("top-k", changedTopK)] {
            XCTAssertThrowsError(try SweepRunner(options: variant).run(), label) { error in
                let sweepError = error as? SweepError
                XCTAssertEqual(sweepError?.kind, .conflictingResults, "\(error)")
                XCTAssertEqual(sweepError?.option, .output, "\(error)")
                XCTAssertTrue("\(error)".contains("different options"), "\(error)")
            }
        }
        XCTAssertThrowsError(try SweepRunner(options: changedData).run()) { error in
            XCTAssertTrue("\(error)".contains("data.seq_len: was 256, now 128"), "\(error)")
        }
    }

    func testIdenticalCheckpointsAreReported() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("identical")
        defer { try? FileManager.default.removeItem(at: root) }
        let suite = root.appendingPathComponent("suite")
        try FileManager.default.createDirectory(at: suite, withIntermediateDirectories: true)
        // step10 is step0 again; step1000 keeps its .bin layout, step20 is step1000 in another folder.
        try FileManager.default.createSymbolicLink(at: suite.appendingPathComponent("step0"), withDestinationURL: SweepFixture.suite.appendingPathComponent("step0"))
        try FileManager.default.createSymbolicLink(at: suite.appendingPathComponent("step10"), withDestinationURL: SweepFixture.suite.appendingPathComponent("step0"))
        try FileManager.default.createSymbolicLink(at: suite.appendingPathComponent("step5"), withDestinationURL: SweepFixture.suite.appendingPathComponent("step4"))
        var options = SweepFixture.options(output: root.appendingPathComponent("out"), probes: [.weights])
        options.suite = suite.path
        options.data = nil
        let summary = try SweepRunner(options: options).run()
        XCTAssertEqual(summary.identical.map(\.step), [10])
        XCTAssertEqual(summary.identical.map(\.sameAs), [0])
        let rows = try MetricsCSV.read(contentsOf: root.appendingPathComponent("out/metrics.csv"))
        let marker = rows.filter { $0.metric == SweepNames.identicalToStep }
        XCTAssertEqual(marker, [MetricRow(step: 10, layer: nil, site: "checkpoint", metric: "identical_to_step", value: 0)])
        let run = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("out/run.json"))) as? [String: Any])
        XCTAssertEqual((run["identical_checkpoints"] as? [[String: Int]])?.first?["identical_to_step"], 0)
    }

    func testSuiteDiscoveryInHuggingFaceCacheLayout() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("hfcache")
        defer { try? FileManager.default.removeItem(at: root) }
        let repository = root.appendingPathComponent("models--EleutherAI--pythia-mini")
        for (revision, step) in [("step1000", 1000), ("step64", 64), ("main", 2000), ("step4", 4)] {
            let hash = String(repeating: String(step % 10), count: 8) + "\(step)"
            let snapshot = repository.appendingPathComponent("snapshots/\(hash)")
            try FileManager.default.createDirectory(at: snapshot.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(at: snapshot, withDestinationURL: SweepFixture.suite.appendingPathComponent("step\(step)"))
            let ref = repository.appendingPathComponent("refs/\(revision)")
            try FileManager.default.createDirectory(at: ref.deletingLastPathComponent(), withIntermediateDirectories: true)
            try hash.write(to: ref, atomically: true, encoding: .utf8)
        }
        let suite = try SweepSuite(spec: repository.path)
        XCTAssertEqual(suite.kind, .huggingFaceCache)
        XCTAssertEqual(suite.steps, [4, 64, 1000], "numeric order, non-step refs ignored")
        XCTAssertEqual(try suite.select("1000,4").map(\.step), [4, 1000])
        XCTAssertThrowsError(try suite.select("5")) { XCTAssertTrue("\($0)".contains("available: 4,64,1000"), "\($0)") }

        let directorySuite = try SweepSuite(spec: SweepFixture.suite.path)
        XCTAssertEqual(directorySuite.steps, [0, 4, 16, 64, 256, 512, 1000, 2000])
    }

    func testClearErrors() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("errors")
        defer { try? FileManager.default.removeItem(at: root) }
        func expectError(_ contains: String, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body()) { XCTAssertTrue("\($0)".contains(contains), "expected '\(contains)' in: \($0)") }
        }
        expectSweepError(.invalidOption, option: .probes, saying: "unknown probe 'attention'") { _ = try SweepProbe.parse("outliers,attention") }
        let empty = root.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        expectError("empty suite") { _ = try SweepSuite(spec: empty.path) }
        expectError("no such directory") { _ = try SweepSuite(spec: root.appendingPathComponent("nope").path) }
        expectError("no such file") {
            _ = try SweepDataSpec.parse(data: root.appendingPathComponent("missing.jsonl").path, rows: nil, batchOfStep: nil,
                                        batchSize: 4, sequenceLength: 16, maxSequences: 2)
        }
        expectSweepError(.invalidOption, option: .rows) {
            _ = try SweepDataSpec.parse(data: SweepFixture.dataset, rows: nil, batchOfStep: nil, batchSize: 4, sequenceLength: 16, maxSequences: nil)
        }
        var tooLong = SweepFixture.options(output: root.appendingPathComponent("long"), probes: [.outliers])
        tooLong.data = .rows(prefix: SweepFixture.dataset, rows: 0..<1, sequenceLength: 2049)
        expectError("exceeds the model's context") { _ = try SweepRunner(options: tooLong).run() }
        var noData = SweepFixture.options(output: root.appendingPathComponent("nodata"), probes: [.cka])
        noData.data = nil
        expectSweepError(.invalidOption, option: .data) { _ = try SweepRunner(options: noData).run() }
        var badReference = SweepFixture.options(output: root.appendingPathComponent("ref"), probes: [.cka])
        badReference.referenceStep = 3
        expectSweepError(.notFound, option: .referenceStep, saying: "reference step 3 is not in the suite") {
            _ = try SweepRunner(options: badReference).run()
        }
    }

    /// The command line names the flag of the option a library error is about.
    func testCommandLinePrefixesTheFlag() throws {
        let root = try SweepFixture.temporaryDirectory("flags")
        defer { try? FileManager.default.removeItem(at: root) }
        let outcome = try CommandRunner.run(["sweep", "--suite", SweepFixture.suite.path, "--data", SweepFixture.dataset, "--rows", "0:2",
                                             "--seq-len", "1", "--out", root.appendingPathComponent("out").path, "--quiet"])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.standardError.contains("--seq-len: sequence length 1 is below the minimum of 2"), outcome.standardError)
    }

    func testBatchOfStepAndPackedTextSpecs() throws {
        try SweepFixture.requireShared()
        let batch = try SweepDataSpec.parse(data: SweepFixture.dataset + ".bin", rows: nil, batchOfStep: 1999, batchSize: 4,
                                            sequenceLength: 8, maxSequences: nil)
        let tokens = try batch.load(tokenizer: nil, contextLimit: 2048)
        let dataset = try IndexedDataset(prefix: SweepFixture.dataset)
        XCTAssertEqual(tokens, try [3605, 3606, 3607, 3608].map { Array(try dataset.row($0).prefix(8)) })

        let text = try SweepDataSpec.parse(data: ProbeFixtures.shared.appendingPathComponent("data/minipile/val.jsonl.zst").path,
                                           rows: nil, batchOfStep: nil, batchSize: 4, sequenceLength: 64, maxSequences: 3)
        let tokenizer = try TokenizerLoader.load(URL(fileURLWithPath: SweepFixture.tokenizer))
        let packed = try text.load(tokenizer: tokenizer, contextLimit: 2048)
        XCTAssertEqual(packed.count, 3)
        XCTAssertTrue(packed.allSatisfy { $0.count == 64 })
    }
}

/// Asserts that `body` throws a `SweepError` of `kind` about `option`, whose message contains `text`.
func expectSweepError(_ kind: SweepError.Kind, option: SweepOptions.Field?, saying text: String? = nil,
                      file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        guard let error = error as? SweepError else { return XCTFail("not a SweepError: \(error)", file: file, line: line) }
        XCTAssertEqual(error.kind, kind, error.message, file: file, line: line)
        XCTAssertEqual(error.option, option, error.message, file: file, line: line)
        if let text { XCTAssertTrue(error.message.contains(text), "expected '\(text)' in: \(error.message)", file: file, line: line) }
    }
}
