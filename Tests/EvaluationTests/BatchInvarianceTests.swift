import Evaluation
import Formats
import Foundation
import NeoX
import TestSupport
import XCTest

/// A sequence's activations, losses and LAMBADA-style scores are bit-identical whether it runs
/// alone or inside any batch (lm-evaluation-harness users see pythia-160m log-likelihoods change
/// with the batch size; here they must not). Checked on pythia-mini and on a synthetic model of
/// pythia-160m's width (d = 768, ff = 3072: products long enough for BLAS to block them).
final class BatchInvarianceTests: XCTestCase {
    static let batchSizes = [1, 2, 3, 5, 8, 16]

    /// A random 2-block model of pythia-160m's width with a small vocabulary, written once.
    static let wideModel: URL = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("batch-invariance-wide-\(ProcessInfo.processInfo.processIdentifier)")
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("model.safetensors").path) { return directory }
        try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let d = 768, ff = 3072, V = 1024, layers = 2
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func random(_ count: Int, scale: Float) -> [Float] {
            (0..<count).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return (Float(state >> 40) / Float(1 << 24) - 0.5) * 2 * scale
            }
        }
        var tensors: [String: Tensor] = [
            "gpt_neox.embed_in.weight": Tensor(shape: [V, d], data: random(V * d, scale: 0.5)),
            "embed_out.weight": Tensor(shape: [V, d], data: random(V * d, scale: 0.05)),
            "gpt_neox.final_layer_norm.weight": Tensor(shape: [d], data: random(d, scale: 0.1).map { 1 + $0 }),
            "gpt_neox.final_layer_norm.bias": Tensor(shape: [d], data: random(d, scale: 0.1)),
        ]
        for L in 0..<layers {
            let p = "gpt_neox.layers.\(L)."
            for (name, shape) in [("input_layernorm.weight", [d]), ("post_attention_layernorm.weight", [d])] {
                tensors[p + name] = Tensor(shape: shape, data: random(d, scale: 0.1).map { 1 + $0 })
            }
            for (name, shape) in [("input_layernorm.bias", [d]), ("post_attention_layernorm.bias", [d]),
                                  ("attention.query_key_value.weight", [3 * d, d]), ("attention.query_key_value.bias", [3 * d]),
                                  ("attention.dense.weight", [d, d]), ("attention.dense.bias", [d]),
                                  ("mlp.dense_h_to_4h.weight", [ff, d]), ("mlp.dense_h_to_4h.bias", [ff]),
                                  ("mlp.dense_4h_to_h.weight", [d, ff]), ("mlp.dense_4h_to_h.bias", [d])] {
                tensors[p + name] = Tensor(shape: shape, data: random(shape.reduce(1, *), scale: 0.05))
            }
        }
        try! SafeTensorsWriter.write(tensors, to: directory.appendingPathComponent("model.safetensors"))
        let config: [String: Any] = [
            "model_type": "gpt_neox", "hidden_size": d, "intermediate_size": ff, "num_hidden_layers": layers,
            "num_attention_heads": 12, "vocab_size": V, "max_position_embeddings": 2048, "rotary_pct": 0.25,
            "rotary_emb_base": 10000, "layer_norm_eps": 1e-5, "use_parallel_residual": true, "hidden_act": "gelu",
            "tie_word_embeddings": false,
        ]
        try! JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("config.json"))
        return directory
    }()

    func models() throws -> [(String, NeoXModel)] {
        var list = [("wide", try NeoXModel(directory: Self.wideModel))]
        let mini = ProbeFixtures.pythiaMini.appendingPathComponent("step2000")
        if FileManager.default.fileExists(atPath: mini.path) { list.append(("pythia-mini", try NeoXModel(directory: mini))) }
        return list
    }

    static func sequences(count: Int, length: Int, vocab: Int, seed: UInt64) -> [[Int32]] {
        var state = seed
        return (0..<count).map { _ in
            (0..<length).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Int32((state >> 33) % UInt64(vocab))
            }
        }
    }

    /// Bit-identity of two activations, reported as the count and the first differing index
    /// (XCTAssertEqual would print both arrays: megabytes per failure).
    static func assertSameBits(_ a: [Float], _ b: [Float], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        guard a.count == b.count else { XCTFail("\(message): \(a.count) vs \(b.count) values", file: file, line: line); return }
        let differing = a.indices.filter { a[$0].bitPattern != b[$0].bitPattern }
        if let first = differing.first {
            XCTFail("\(message): \(differing.count) of \(a.count) values, first at \(first): \(a[first]) vs \(b[first])", file: file, line: line)
        }
    }

    func testActivationsAndLogitsIdenticalAloneOrInAnyBatch() throws {
        for (name, model) in try models() {
            for length in [7, 200] {
                let others = Self.sequences(count: 16, length: length, vocab: model.config.vocabSize, seed: UInt64(length))
                let probe = others[0]
                let alone = try model.forward(tokens: [probe], capture: .all, logits: length > 100 ? .none : .all)
                for size in Self.batchSizes.dropFirst() {
                    for slot in Set([size / 2, size - 1]) {
                        var batch = Array(others[1..<size])
                        batch.insert(probe, at: slot)
                        let together = try model.forward(tokens: batch, capture: .all, logits: length > 100 ? .none : .all)
                        if let a = alone.logits?.data, let b = together.logits?.data {
                            Self.assertSameBits(a, Array(b[(slot * b.count / size)..<((slot + 1) * b.count / size)]),
                                                "\(name) T=\(length): logits differ in a batch of \(size)")
                        } else {
                            XCTAssertEqual(alone.logits == nil, together.logits == nil, "\(name) T=\(length): logits in one pass only")
                        }
                        for hook in alone.activations.names where hook != "logits" || length < 100 {
                            let a = alone.activations[hook]!.data, b = together.activations[hook]!.data
                            let width = a.count / length
                            let mine = Array(b[(slot * length * width)..<((slot + 1) * length * width)])
                            Self.assertSameBits(a, mine, "\(name) T=\(length): \(hook) differs in a batch of \(size) (slot \(slot))")
                        }
                    }
                }
            }
        }
    }

    /// Scores (log-likelihoods, greedy flags) of jobs of different lengths, batched and padded as
    /// LAMBADA and perplexity batch them, equal the scores of each job alone.
    func testScoresIdenticalAloneOrInAnyBatch() throws {
        for (name, model) in try models() {
            let V = model.config.vocabSize
            let lengths = [5, 9, 17, 31, 40, 64, 64, 90, 120, 129, 200, 257]
            let jobs = lengths.enumerated().map { i, n -> ScoringJob in
                let tokens = Self.sequences(count: 1, length: n + 1, vocab: V, seed: UInt64(100 + i))[0]
                let targets = (max(0, n - 4)..<n).map { ScoringJob.Target(position: $0 - 1 < 0 ? 0 : $0 - 1, token: tokens[$0]) }
                return ScoringJob(tokens: Array(tokens.prefix(n)), targets: targets)
            }
            let alone = try jobs.map { try BatchScorer(model: model, tokensPerBatch: 1).score([$0])[0] }
            for budget in [300, 1 << 20] {
                var scorer = BatchScorer(model: model, tokensPerBatch: budget)
                for chunk in [7, 128] {
                    scorer.rowsPerChunk = chunk
                    let together = try scorer.score(jobs)
                    for j in jobs.indices {
                        XCTAssertEqual(together[j], alone[j], "\(name): job \(j) (\(lengths[j]) tokens) differs with \(budget) tokens per batch, \(chunk) rows per chunk")
                    }
                }
            }
        }
    }
}
