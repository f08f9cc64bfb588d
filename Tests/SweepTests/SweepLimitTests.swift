import Corpus
import Foundation
import TestSupport
import XCTest
@testable import Sweep

/// Hostile numbers are clear errors naming the option, never an arithmetic-overflow trap or an
/// allocation abort; and options a probe needs are required, not defaulted to a path.
final class SweepLimitTests: XCTestCase {
    private func parse(rows: String? = nil, batchOfStep: Int? = nil, batchSize: Int = 4) throws -> SweepDataSpec {
        try SweepDataSpec.parse(data: SweepFixture.dataset, rows: rows, batchOfStep: batchOfStep, batchSize: batchSize,
                                sequenceLength: 8, maxSequences: nil)
    }

    private func load(_ spec: SweepDataSpec) throws { _ = try spec.load(tokenizer: nil, contextLimit: 2048) }

    func testSequenceLengthBelowTwo() {
        expectSweepError(.invalidOption, option: .sequenceLength, saying: "sequence length 1 is below the minimum of 2") {
            _ = try SweepDataSpec.parse(data: "unused", rows: nil, batchOfStep: nil, batchSize: 4, sequenceLength: 1, maxSequences: nil)
        }
    }

    func testTrainingStepWhoseSamplesPassIntMax() throws {
        try SweepFixture.requireShared()
        expectSweepError(.invalidOption, option: .batchOfStep, saying: "reaches past sample index") { _ = try parse(batchOfStep: Int.max) }
        expectSweepError(.invalidOption, option: .batchOfStep) { _ = try parse(batchOfStep: Int.max / 4, batchSize: 4) }
        expectSweepError(.invalidOption, option: .batchOfStep) { _ = try parse(batchOfStep: -1) }
        expectSweepError(.invalidOption, option: .batchSize) { _ = try parse(batchOfStep: 0, batchSize: 0) }
        // A spec built directly, not parsed, is checked when loaded.
        expectSweepError(.invalidOption, option: .batchOfStep) {
            try load(.batchOfStep(prefix: SweepFixture.dataset, step: Int.max, batchSize: 2, sequenceLength: 8))
        }
    }

    func testBatchTooLargeForMemory() throws {
        try SweepFixture.requireShared()
        let spec = try parse(batchOfStep: 1999, batchSize: 1_000_000_000_000)
        expectSweepError(.invalidOption, option: .batchSize, saying: "of memory") { try load(spec) }
        expectSweepError(.invalidOption, option: .batchSize) {
            try load(.batchOfStep(prefix: SweepFixture.dataset, step: 0, batchSize: Int.max, sequenceLength: 8))
        }
    }

    func testRowRangesOutsideTheDataset() throws {
        try SweepFixture.requireShared()
        let rowCount = try IndexedDataset(prefix: SweepFixture.dataset).count
        expectSweepError(.invalidOption, option: .rows, saying: "0..<\(rowCount)") { _ = try parse(rows: "0:9223372036854775807") }
        expectSweepError(.invalidOption, option: .rows) { _ = try parse(rows: "9223372036854775807") }
        expectSweepError(.invalidOption, option: .rows) { _ = try parse(rows: "-9223372036854775808:2") }
        expectSweepError(.invalidOption, option: .rows) { _ = try parse(rows: "99999999999999999999") }
        expectSweepError(.invalidOption, option: .rows) {
            try load(.rows(prefix: SweepFixture.dataset, rows: 0..<Int.max, sequenceLength: 8))
        }
        XCTAssertEqual(try parse(rows: "\(rowCount - 1)"), .rows(prefix: SweepFixture.dataset, rows: (rowCount - 1)..<rowCount, sequenceLength: 8))
    }

    /// Checked in planning, after the evaluation tokens are known and before anything is written.
    func testCKAMinibatchAndTopKBeyondTheData() throws {
        try SweepFixture.requireShared()
        let root = try SweepFixture.temporaryDirectory("limits")
        defer { try? FileManager.default.removeItem(at: root) }
        let output = root.appendingPathComponent("out")

        var minibatch = SweepFixture.options(output: output, probes: [.cka])
        minibatch.ckaMinibatch = 1_000_000_000_000
        expectSweepError(.invalidOption, option: .ckaMinibatch, saying: "exceeds the 512 evaluation tokens") {
            _ = try SweepRunner(options: minibatch).run()
        }
        minibatch.ckaMinibatch = 2
        expectSweepError(.invalidOption, option: .ckaMinibatch) { _ = try SweepRunner(options: minibatch).run() }

        var topK = SweepFixture.options(output: output, probes: [.outliers])
        topK.topK = 1_000_000_000
        expectSweepError(.invalidOption, option: .topK, saying: "exceeds the hidden size") { _ = try SweepRunner(options: topK).run() }
        topK.topK = -1
        expectSweepError(.invalidOption, option: .topK) { _ = try SweepRunner(options: topK).run() }

        XCTAssertFalse(FileManager.default.fileExists(atPath: output.path), "a refused plan writes nothing")
    }

    func testMemoryArithmeticReportsOverflow() {
        XCTAssertEqual(SweepMemory.product([3, 5, 7]), 105)
        XCTAssertNil(SweepMemory.product([Int.max, 2]))
        XCTAssertNil(SweepMemory.sum([Int.max, 1]))
        XCTAssertNil(SweepMemory.sum([1, nil]))
        expectSweepError(.invalidOption, option: .ckaMinibatch, saying: "more than") {
            try SweepMemory.require(nil, for: "a test buffer", option: .ckaMinibatch)
        }
        XCTAssertNoThrow(try SweepMemory.require(1024, for: "a test buffer", option: .ckaMinibatch))
    }

    /// The library has no default LAMBADA file: the lambada probe needs one named.
    func testLambadaDataIsRequired() throws {
        var options = SweepOptions(suite: "unused", data: nil, probes: [.lambada],
                                   output: FileManager.default.temporaryDirectory.appendingPathComponent("unused"))
        XCTAssertNil(options.lambadaData)
        options.verbose = false
        expectSweepError(.invalidOption, option: .lambadaData) { _ = try SweepRunner(options: options).run() }
    }
}
