import Corpus
import Evaluation
import Formats
import Foundation
import NeoX
import TestSupport
import Tokenizers
import XCTest

final class EvalPerplexityTests: XCTestCase {
    /// HF's strided convention: with stride < window every token after the first is scored exactly
    /// once, and each scored token sees at least window − stride tokens once past the first window.
    func testStridedWindowsScoreEachTokenOnce() throws {
        let tokens = (0..<1000).map(Int32.init)
        for (window, stride) in [(128, 64), (100, 1), (50, 49), (7, 3), (2000, 10)] {
            let windows = try StridedWindows(window: window, stride: stride)
            var seen: [Int] = []
            for job in windows.jobs(for: tokens) {
                XCTAssertLessThanOrEqual(job.tokens.count, window)
                let begin = Int(job.tokens[0])
                for target in job.targets {
                    let t = begin + target.position + 1
                    XCTAssertEqual(target.token, tokens[t])
                    if t >= window { XCTAssertGreaterThanOrEqual(target.position + 1, window - stride) }
                    seen.append(t)
                }
            }
            XCTAssertEqual(seen, Array(1..<1000), "window \(window) stride \(stride)")
        }
        // stride == window: the first token of each later window has no context and is skipped (as in HF).
        let plain = try StridedWindows(window: 100, stride: 100).jobs(for: tokens)
        XCTAssertEqual(plain.reduce(0) { $0 + $1.targets.count }, 1000 - 10)
        XCTAssertEqual(try StridedWindows(window: 8, stride: 4).jobs(for: [5]).count, 0)
        XCTAssertThrowsError(try StridedWindows(window: 1, stride: 1))
        XCTAssertThrowsError(try StridedWindows(window: 10, stride: 11))
        XCTAssertThrowsError(try StridedWindows(window: 10, stride: 0))

        let row = ShiftedRow.job(for: [9, 8, 7, 6])
        XCTAssertEqual(row.tokens, [9, 8, 7])
        XCTAssertEqual(row.targets, [.init(position: 0, token: 8), .init(position: 1, token: 7), .init(position: 2, token: 6)])
    }

    /// Per-document, packed and .bin-row perplexity on two pythia-mini steps against HF transformers.
    func testMatchesHF() throws {
        try EvalFixtures.requireShared()
        let fixture = try EvalFixtures.json("perplexity.json")
        let cases = try XCTUnwrap(fixture["cases"] as? [[String: Any]])
        let tokenizer = try EvalFixtures.tokenizer()
        let minipile = ProbeFixtures.shared.appendingPathComponent("data/minipile")
        let documents = try PileReader(path: minipile.appendingPathComponent("val.jsonl.zst").path).documents(limit: 8).map(\.text)
        let dataset = try IndexedDataset(prefix: minipile.appendingPathComponent("document").path)
        var models: [String: NeoXModel] = [:]
        for item in cases {
            let step = try XCTUnwrap(item["step"] as? String), mode = try XCTUnwrap(item["mode"] as? String)
            if models[step] == nil { models[step] = try EvalFixtures.model(step) }
            var accumulator = PerplexityAccumulator(scorer: BatchScorer(model: models[step]!), flushTokens: 700)
            switch mode {
            case "per-document", "packed":
                let range = try XCTUnwrap(item["documents"] as? [Int])
                let windows = try StridedWindows(window: try XCTUnwrap(item["window"] as? Int), stride: try XCTUnwrap(item["stride"] as? Int))
                let encoded = try (range[0]..<range[1]).map { ($0, try tokenizer.encode(documents[$0])) }
                if mode == "packed" {
                    let stream: [Int32] = encoded.flatMap { (_, ids) -> [Int32] in ids.isEmpty ? [] : ids + [0] }
                    for job in windows.jobs(for: stream) { try accumulator.add(job, owner: 0) }
                } else {
                    for (index, ids) in encoded { for job in windows.jobs(for: ids) { try accumulator.add(job, owner: index) } }
                }
            default:
                let rows = try XCTUnwrap(item["rows"] as? [Int])
                for r in rows[0]..<rows[1] { try accumulator.add(ShiftedRow.job(for: try dataset.row(r)), owner: r) }
            }
            let (total, perOwner) = try accumulator.finish()
            let label = "\(step) \(mode)"
            XCTAssertEqual(total.tokens, item["tokens"] as? Int, label)
            assertClose(total.nllSum, try XCTUnwrap(item["nll_sum"] as? Double), "\(label) nll sum")
            assertClose(total.nll, try XCTUnwrap(item["nll"] as? Double), "\(label) nll")
            assertClose(total.perplexity, try XCTUnwrap(item["perplexity"] as? Double), "\(label) perplexity")
            if let expected = item["per_document"] as? [[String: Any]] {
                XCTAssertEqual(perOwner.map(\.owner), expected.compactMap { $0["index"] as? Int })
                for (got, want) in zip(perOwner, expected) {
                    XCTAssertEqual(got.total.tokens, want["tokens"] as? Int)
                    assertClose(got.total.nll, try XCTUnwrap(want["nll"] as? Double), "\(label) document \(got.owner)")
                }
            }
        }
    }
}

/// The streamed windows must be the very jobs the whole-stream windows give, however the
/// stream is cut into pieces.
final class EvalStridedStreamTests: XCTestCase {
    func testStreamedWindowsEqualWholeStreamWindows() throws {
        var state: UInt64 = 42
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % bound
        }
        for (window, stride) in [(2, 1), (4, 2), (5, 5), (8, 3), (16, 16), (16, 8)] {
            let windows = try StridedWindows(window: window, stride: stride)
            for length in [0, 1, 2, 3, window - 1, window, window + 1, 2 * window, 5 * window + 3] where length >= 0 {
                let tokens = (0..<length).map { _ in Int32(next(1000)) }
                var stream = StridedWindowStream(windows)
                var jobs: [ScoringJob] = []
                var start = 0
                while start < length {
                    let piece = min(length - start, 1 + next(2 * window))
                    jobs += stream.append(Array(tokens[start..<start + piece]))
                    start += piece
                }
                jobs += stream.finish()
                XCTAssertEqual(jobs, windows.jobs(for: tokens), "window \(window) stride \(stride) length \(length)")
                XCTAssertEqual(stream.count, length)
            }
        }
    }
}
