import Corpus
import Evaluation
import Formats
import Foundation
import NeoX
import TestSupport
import Tokenizers
import XCTest

/// Reference data written by Tests/Fixtures/generate_eval.py (HF transformers + the harness's
/// formulas, cross-checked against lm_eval itself) and the real inputs in ../shared.
enum EvalFixtures {
    static let directory = RepositoryPaths.fixtures("eval")
    static let tokenizerURL = ProbeFixtures.shared.appendingPathComponent("tokenizer/20B_tokenizer.json")
    static let lambadaURL = ProbeFixtures.shared.appendingPathComponent("data/lambada/lambada_test.jsonl")

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func requireShared() throws {
        guard FileManager.default.fileExists(atPath: ProbeFixtures.pythiaMini.path) else {
            throw XCTSkip("needs ../shared (pythia-mini, tokenizer, LAMBADA)")
        }
    }

    static func model(_ step: String) throws -> NeoXModel {
        try NeoXModel(directory: ProbeFixtures.pythiaMini.appendingPathComponent(step))
    }

    static func tokenizer() throws -> any TextTokenizer { try TokenizerLoader.load(tokenizerURL) }
}

final class EvalLambadaTests: XCTestCase {
    static let steps = ["step0", "step4", "step16", "step64", "step256", "step512", "step1000", "step2000"]

    func testEncodingMatchesHarness() throws {
        try EvalFixtures.requireShared()
        let fixture = try EvalFixtures.json("lambada.json")
        let encodings = try XCTUnwrap(fixture["encodings"] as? [[String: Any]])
        let examples = try LambadaDataset.load(path: EvalFixtures.lambadaURL.path)
        let model = try EvalFixtures.model("step0")
        let evaluator = LambadaEvaluator(model: model, tokenizer: try EvalFixtures.tokenizer())
        let requests = try evaluator.requests(for: Array(examples.prefix(encodings.count)))
        for (i, expected) in encodings.enumerated() {
            XCTAssertEqual(requests[i].context.count, expected["context_length"] as? Int, "example \(i) context length")
            XCTAssertEqual(requests[i].continuation.map(Int.init), expected["continuation"] as? [Int], "example \(i) continuation")
        }
    }

    /// Every pythia-mini step: per-example summed log-likelihood and greedy flag, and the
    /// aggregates, against HF transformers following the harness's formulas.
    func testPythiaMiniStepsMatchHF() throws {
        try EvalFixtures.requireShared()
        let fixture = try EvalFixtures.json("lambada.json")
        let steps = try XCTUnwrap(fixture["steps"] as? [String: [String: Any]])
        let examples = try LambadaDataset.load(path: EvalFixtures.lambadaURL.path)
        let tokenizer = try EvalFixtures.tokenizer()
        let n = 100
        var requests: [LambadaRequest]?
        for step in Self.steps {
            let reference = try XCTUnwrap(steps[step], step)
            let evaluator = LambadaEvaluator(model: try EvalFixtures.model(step), tokenizer: tokenizer)
            if requests == nil { requests = try evaluator.requests(for: Array(examples.prefix(n))) }
            let result = try evaluator.evaluate(requests: requests!)
            let lls = try XCTUnwrap(reference["ll"] as? [Double])
            let greedy = try XCTUnwrap(reference["greedy"] as? [Int])
            for i in 0..<n {
                assertClose(result.examples[i].logLikelihood, lls[i], "\(step) example \(i) loglikelihood")
                XCTAssertEqual(result.examples[i].isGreedy, greedy[i] == 1, "\(step) example \(i) greedy")
            }
            let aggregate = try XCTUnwrap((reference["aggregates"] as? [String: [String: Double]])?["\(n)"])
            XCTAssertEqual(result.n, n)
            XCTAssertEqual(result.acc, aggregate["acc"], "\(step) acc")
            assertClose(result.perplexity, try XCTUnwrap(aggregate["perplexity"]), "\(step) perplexity")
        }
    }

    /// Greedy continuations (HF argmax, token by token) scored as LAMBADA targets: every one must
    /// be greedy (acc 1) with HF's log-likelihood. Real targets can't test this: the small code
    /// model never guesses a LAMBADA word.
    func testGreedyContinuationsAreGreedy() throws {
        try EvalFixtures.requireShared()
        let fixture = try EvalFixtures.json("greedy.json")
        let steps = try XCTUnwrap(fixture["steps"] as? [String: [[String: Any]]])
        let count = try XCTUnwrap(fixture["count"] as? Int)
        let tokenizer = try EvalFixtures.tokenizer()
        let examples = Array(try LambadaDataset.load(path: EvalFixtures.lambadaURL.path).prefix(count))
        for (step, items) in steps.sorted(by: { $0.key < $1.key }) {
            let evaluator = LambadaEvaluator(model: try EvalFixtures.model(step), tokenizer: tokenizer)
            let contexts = try evaluator.requests(for: examples).map(\.context)
            let requests = try zip(contexts, items).map { context, item in
                LambadaRequest(context: context, continuation: try XCTUnwrap(item["continuation"] as? [Int]).map(Int32.init))
            }
            let result = try evaluator.evaluate(requests: requests)
            XCTAssertEqual(result.acc, 1, step)
            for (i, item) in items.enumerated() {
                XCTAssertTrue(result.examples[i].isGreedy, "\(step) example \(i)")
                assertClose(result.examples[i].logLikelihood, try XCTUnwrap(item["ll"] as? Double), "\(step) example \(i) greedy ll")
            }
        }
    }

    /// The harness itself (lm_eval CLI, recorded by the generator) on the first examples of step2000.
    func testStep2000MatchesLmEvalHarness() throws {
        try EvalFixtures.requireShared()
        let fixture = try EvalFixtures.json("lambada.json")
        let harness = try XCTUnwrap(fixture["lm_eval"] as? [String: Any])
        let limit = try XCTUnwrap(harness["limit"] as? Int)
        let evaluator = LambadaEvaluator(model: try EvalFixtures.model("step2000"), tokenizer: try EvalFixtures.tokenizer())
        let result = try evaluator.evaluate(examples: try LambadaDataset.load(path: EvalFixtures.lambadaURL.path), limit: limit)
        XCTAssertEqual(result.n, limit)
        XCTAssertEqual(result.acc, harness["acc"] as? Double)
        assertClose(result.perplexity, try XCTUnwrap(harness["perplexity"] as? Double), "lm_eval perplexity")
    }

    /// `_encode_pair`: trailing whitespace of the context moves to the continuation, and the
    /// continuation is whatever `encode(context + continuation)` adds after `encode(context)`.
    func testEncodePairMovesTrailingWhitespace() throws {
        try EvalFixtures.requireShared()
        let tokenizer = try EvalFixtures.tokenizer()
        let encode: (String) throws -> [Int32] = { try tokenizer.encode($0) }
        for (context, target) in [("She said  ", " hello"), ("tab\t", " x"), ("nbsp\u{00A0}", " y"), ("plain", " word")] {
            let request = try LambadaRequest.encode(context: context, continuation: target, endOfText: 0, encode: encode)
            var kept = context
            while let last = kept.unicodeScalars.last, last.properties.isWhitespace { kept.unicodeScalars.removeLast() }
            let contextIDs = try encode(kept)
            XCTAssertEqual(request.context, contextIDs, context)
            XCTAssertEqual(contextIDs + request.continuation, try encode(context + target), context)
        }
        // U+001C..U+001F count as whitespace for Python's str.rstrip (not for Unicode White_Space).
        let (kept, tail) = LambadaRequest.splitTrailingPythonWhitespace("a\u{1F} \u{1C}")
        XCTAssertEqual(kept, "a")
        XCTAssertEqual(tail, "\u{1F} \u{1C}")
        // No words before the target: the harness scores it after <|endoftext|>.
        let empty = try LambadaRequest.encode(context: "", continuation: " Hello", endOfText: 0, encode: encode)
        XCTAssertEqual(empty.context, [0])
        XCTAssertEqual(empty.continuation, try encode(" Hello"))
    }

    /// Inputs longer than the context are left-truncated as the harness does, and scoring a
    /// truncated request equals scoring the already-truncated tokens.
    func testLeftTruncation() throws {
        try EvalFixtures.requireShared()
        let request = LambadaRequest(context: (1...10).map(Int32.init), continuation: [11, 12, 13])
        let job = try request.job(maxLength: 8)
        XCTAssertEqual(job.tokens, Array((5...12).map(Int32.init)))   // last 9 of 13, minus the last
        XCTAssertEqual(job.targets.map(\.position), [5, 6, 7])
        XCTAssertEqual(job.targets.map(\.token), [11, 12, 13])
        XCTAssertThrowsError(try LambadaRequest(context: [1], continuation: (0..<9).map(Int32.init)).job(maxLength: 8))

        let model = try EvalFixtures.model("step2000")
        var short = LambadaEvaluator(model: model, tokenizer: try EvalFixtures.tokenizer())
        short.maxLength = 8
        let truncated = try short.evaluate(requests: [request])
        XCTAssertEqual(truncated.truncatedCount, 1)
        let full = try LambadaEvaluator(model: model, tokenizer: try EvalFixtures.tokenizer())
            .evaluate(requests: [LambadaRequest(context: (5...10).map(Int32.init), continuation: [11, 12, 13])])
        XCTAssertEqual(full.truncatedCount, 0)
        assertClose(truncated.examples[0].logLikelihood, full.examples[0].logLikelihood, "truncated ll", relative: 1e-6)
    }

    /// Right padding inside a batch changes nothing: batched scores equal one-at-a-time scores.
    func testBatchingIsInvisible() throws {
        try EvalFixtures.requireShared()
        let model = try EvalFixtures.model("step2000")
        let jobs = [
            ScoringJob(tokens: [5, 6, 7, 8, 9, 10, 11], targets: [.init(position: 6, token: 3), .init(position: 2, token: 8)]),
            ScoringJob(tokens: [40, 41, 42], targets: [.init(position: 0, token: 41), .init(position: 2, token: 7)]),
            ScoringJob(tokens: [99], targets: []),
            ScoringJob(tokens: [1, 2, 3, 4], targets: [.init(position: 3, token: 5)]),
        ]
        var scorer = BatchScorer(model: model)
        let batched = try scorer.score(jobs)
        scorer.tokensPerBatch = 1
        scorer.rowsPerChunk = 1
        let single = try scorer.score(jobs)
        XCTAssertEqual(batched.map(\.count), [2, 2, 0, 1])
        for (a, b) in zip(batched.joined(), single.joined()) {
            assertClose(a.logProbability, b.logProbability, "batched vs single", relative: 1e-5)
            XCTAssertEqual(a.isGreedy, b.isGreedy)
        }
        // Input errors are reported, not trapped.
        XCTAssertThrowsError(try scorer.score([ScoringJob(tokens: [1], targets: [.init(position: 1, token: 2)])]))
        let tooLong = [Int32](repeating: 1, count: model.config.maxPositionEmbeddings + 1)
        XCTAssertThrowsError(try scorer.score([ScoringJob(tokens: tooLong, targets: [.init(position: 0, token: 1)])])) {
            XCTAssertTrue("\($0)".contains("max_position_embeddings"), "\($0)")
        }
    }
}
