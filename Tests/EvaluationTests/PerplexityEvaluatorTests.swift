import Corpus
import Evaluation
import Formats
import Foundation
import NeoX
import TestSupport
import Tokenizers
import XCTest

/// `PerplexityEvaluator` end to end on the real pythia-mini against HF transformers
/// (Tests/Fixtures/eval/perplexity.json), and its setting errors.
final class PerplexityEvaluatorTests: XCTestCase {
    /// Every text case (per-document and packed, both steps) and the `.bin` rows case of one
    /// step, through the evaluator as `neoxprobe perplexity` calls it.
    func testMatchesHF() throws {
        try EvalFixtures.requireShared()
        let cases = try XCTUnwrap(try EvalFixtures.json("perplexity.json")["cases"] as? [[String: Any]])
        let minipile = ProbeFixtures.shared.appendingPathComponent("data/minipile")
        let tokenizer = try EvalFixtures.tokenizer()
        var rowsChecked = false
        for item in cases {
            let step = try XCTUnwrap(item["step"] as? String), mode = try XCTUnwrap(item["mode"] as? String)
            let data = minipile.appendingPathComponent(try XCTUnwrap(item["data"] as? String)).path
            let corpus: PerplexityCorpus
            if mode == "rows" {
                // One rows case is enough here (4096 tokens each); EvalPerplexityTests covers both.
                if rowsChecked { continue }
                rowsChecked = true
                let rows = try XCTUnwrap(item["rows"] as? [Int])
                corpus = .rows(prefix: data, selection: .init(start: rows[0], end: rows[1]))
            } else {
                let documents = try XCTUnwrap(item["documents"] as? [Int])
                let windowing = PerplexityCorpus.Windowing(window: try XCTUnwrap(item["window"] as? Int),
                                                           stride: try XCTUnwrap(item["stride"] as? Int),
                                                           perDocument: mode == "per-document")
                corpus = .text(path: data, windowing: windowing, selection: .init(start: documents[0], end: documents[1]))
            }
            let result = try PerplexityEvaluator(model: try EvalFixtures.model(step), tokenizer: tokenizer).evaluate(corpus)
            let label = "\(step) \(mode)"
            XCTAssertEqual(result.mode.rawValue, mode, label)
            XCTAssertEqual(result.total.tokens, item["tokens"] as? Int, label)
            assertClose(result.total.nllSum, try XCTUnwrap(item["nll_sum"] as? Double), "\(label) nll sum")
            assertClose(result.total.perplexity, try XCTUnwrap(item["perplexity"] as? Double), "\(label) perplexity")
            XCTAssertEqual(result.windows == nil, mode == "rows", label)
            XCTAssertFalse(result.convention.isEmpty, label)
            if let expected = item["per_document"] as? [[String: Any]] {
                XCTAssertEqual(result.units.map(\.index), expected.compactMap { $0["index"] as? Int }, label)
                for (got, want) in zip(result.units, expected) {
                    XCTAssertEqual(got.total.tokens, want["tokens"] as? Int, label)
                    assertClose(got.total.nll, try XCTUnwrap(want["nll"] as? Double), "\(label) document \(got.index)")
                }
            }
            if mode == "packed" { XCTAssertTrue(result.units.isEmpty, "a packed stream has no per-document split") }
        }
    }

    /// Out-of-range settings are `EvalError(.invalidSetting)` naming the setting, in the library's
    /// own words (no command-line flags), checked before any corpus is read.
    func testSettingErrorsNameTheSetting() throws {
        let model = try NeoXModel(directory: RepositoryPaths.fixtures("checkpoints").appendingPathComponent("tiny-safetensors"))
        let context = model.config.maxPositionEmbeddings
        let evaluator = PerplexityEvaluator(model: model, tokenizer: nil)
        let text = RepositoryPaths.fixtures("corpus").appendingPathComponent("tiny.jsonl").path
        let cases: [(PerplexityCorpus, EvalError.Setting)] = [
            (.text(path: text, windowing: .init(window: context + 1), selection: .init()), .window),
            (.text(path: text, windowing: .init(window: 1), selection: .init()), .window),
            (.text(path: text, windowing: .init(window: 8, stride: 9), selection: .init()), .stride),
            (.text(path: text, windowing: .init(endOfDocument: -1), selection: .init()), .endOfDocument),
            (.text(path: text, windowing: .init(), selection: .init(start: 3, end: 3)), .selection),
            (.text(path: text, windowing: .init(), selection: .init(start: -1)), .selection),
            (.text(path: text, windowing: .init(), selection: .init(limit: 0)), .limit),
            (.rows(prefix: "/nonexistent", selection: .init(maxTokens: 0)), .maxTokens),
        ]
        for (corpus, setting) in cases {
            XCTAssertThrowsError(try evaluator.evaluate(corpus), "\(corpus)") { error in
                guard let error = error as? EvalError else { return XCTFail("\(corpus): \(error) is not an EvalError") }
                XCTAssertEqual(error.kind, .invalidSetting, "\(corpus)")
                XCTAssertEqual(error.setting, setting, "\(corpus): \(error)")
                XCTAssertFalse(error.message.contains("--"), "library errors name settings, not flags: \(error)")
            }
        }
    }
}
