import Formats
import Foundation
import TestSupport
import XCTest

@testable import NeoX

/// HF `generate(do_sample=False)` references written by Tests/Fixtures/generate_generation.py.
enum GenerationFixtures {
    static let root = RepositoryPaths.fixtures("generation")

    struct Record: Decodable {
        struct Sequence: Decodable { var prompt: [Int32]; var tokens: [Int32] }
        var max_new_tokens: Int
        var logit_stride: Int?
        var sequences: [Sequence]
    }

    static func load(_ name: String) throws -> (Record, [String: Tensor]) {
        let record = try JSONDecoder().decode(Record.self, from: Data(contentsOf: root.appendingPathComponent(name + ".json")))
        return (record, try ForwardFixtures.reference(root.appendingPathComponent(name + ".safetensors")))
    }

    /// ‖a − r‖∞ / ‖r‖∞ for one row of logits.
    static func rowRelativeError(_ a: [Float], _ r: [Float]) -> Float {
        var difference: Float = 0, scale: Float = 0
        for i in 0..<min(a.count, r.count) {
            let e = abs(a[i] - r[i])
            difference = e.isNaN ? .infinity : max(difference, e)
            scale = max(scale, abs(r[i]))
        }
        return difference / max(scale, .leastNormalMagnitude)
    }

    /// Logits of each step when `tokens` are fed one by one after `prompt` (teacher forcing on
    /// HF's continuation), from one decoder: the per-step logits HF's generate produced.
    static func stepLogits(_ model: NeoXModel, prompt: [Int32], tokens: [Int32]) throws -> [[Float]] {
        let decoder = try Decoder(model: model, batch: 1, capacity: prompt.count + tokens.count)
        var rows = [try XCTUnwrap(decoder.feed([prompt])[0])]
        for token in tokens.dropLast() { rows.append(try XCTUnwrap(decoder.feed([[token]])[0])) }
        return rows
    }
}

final class GenerationParityTests: XCTestCase {
    /// Tokens identical to HF's, alone and batched with unequal lengths; per-step logits within
    /// 1e-4·(1+|ref|).
    func checkTiny(_ name: String) throws {
        let (record, reference) = try GenerationFixtures.load(name)
        let model = try NeoXModel(directory: ForwardFixtures.root.appendingPathComponent(name))
        let options = GenerationOptions(maxNewTokens: record.max_new_tokens, stopTokens: Set([model.config.eosTokenID].compactMap { $0 }))
        let prompts = record.sequences.map(\.prompt)
        let batched = try model.generate(prompts: prompts, options: options)
        var worst: Float = 0
        for (i, expected) in record.sequences.enumerated() {
            let alone = try model.generate(prompts: [expected.prompt], options: options)[0]
            XCTAssertEqual(alone.tokens, expected.tokens, "\(name) prompt \(i) alone")
            XCTAssertEqual(batched[i].tokens, expected.tokens, "\(name) prompt \(i) batched")
            XCTAssertEqual(batched[i].logprobs.count, expected.tokens.count)
            let ref = try XCTUnwrap(reference["p\(i).logits"])
            let ours = try GenerationFixtures.stepLogits(model, prompt: expected.prompt, tokens: expected.tokens)
            XCTAssertEqual(ours.count, ref.shape[0])
            let V = ref.shape[1]
            for (s, row) in ours.enumerated() {
                worst = max(worst, ForwardFixtures.maxScaledError(row, Array(ref.data[(s * V)..<((s + 1) * V)])))
            }
        }
        XCTAssertLessThanOrEqual(worst, 1e-4, name)
        print("GENERATION \(name): tokens identical to HF generate for \(prompts.count) prompts (alone and batched); max scaled logit error \(worst)")
    }

    func testParallelErf() throws { try checkTiny("parallel_erf_r025") }
    func testSequentialTanh() throws { try checkTiny("sequential_tanh_r100") }
    func testParallelNoBiasTied() throws { try checkTiny("parallel_tanh_nobias_tied") }
    func testSequentialRelu() throws { try checkTiny("sequential_relu_r025") }

    /// Every pythia-mini step: the four prompts batched (lengths 1, 5, 13, 32) give HF's tokens;
    /// sampled per-step logits and the chosen tokens' logits within 1e-4·(1+|ref|).
    func testPythiaMiniEveryStep() throws {
        let suite = RepositoryPaths.shared.appendingPathComponent("models/pythia-mini")
        guard FileManager.default.fileExists(atPath: suite.path) else { throw XCTSkip("\(suite.path) not present") }
        var worst: Float = 0, cacheWorst: Float = 0
        for step in ["step0", "step4", "step16", "step64", "step256", "step512", "step1000", "step2000"] {
            let (record, reference) = try GenerationFixtures.load("pythia-mini-\(step)")
            let model = try NeoXModel(directory: suite.appendingPathComponent(step))
            let options = GenerationOptions(maxNewTokens: record.max_new_tokens, stopTokens: [0])
            let generated = try model.generate(prompts: record.sequences.map(\.prompt), options: options)
            let stride = try XCTUnwrap(record.logit_stride)
            for (i, expected) in record.sequences.enumerated() {
                XCTAssertEqual(generated[i].tokens, expected.tokens, "\(step) prompt \(i)")
                let rows = try GenerationFixtures.stepLogits(model, prompt: expected.prompt, tokens: expected.tokens)
                // The KV cache against the full forward of the whole sequence.
                let sequence = expected.prompt + expected.tokens.dropLast()
                let positions = Array((expected.prompt.count - 1)..<sequence.count)
                let full = try XCTUnwrap(model.forward(tokens: [sequence], logits: .positions([positions])).logits)
                let V = model.config.vocabSize
                for (s, row) in rows.enumerated() {
                    cacheWorst = max(cacheWorst, GenerationFixtures.rowRelativeError(row, Array(full.data[(s * V)..<((s + 1) * V)])))
                }
                let sampled = try XCTUnwrap(reference["p\(i).logits"]), chosen = try XCTUnwrap(reference["p\(i).chosen"])
                let width = sampled.shape[1]
                for (s, row) in rows.enumerated() {
                    let ours = stride0(row, stride).prefix(width)
                    worst = max(worst, ForwardFixtures.maxScaledError(Array(ours), Array(sampled.data[(s * width)..<((s + 1) * width)])))
                    worst = max(worst, ForwardFixtures.maxScaledError([row[Int(expected.tokens[s])]], [chosen.data[s]]))
                }
            }
        }
        XCTAssertLessThanOrEqual(worst, 1e-4)
        XCTAssertLessThanOrEqual(cacheWorst, 1e-5)
        print("GENERATION pythia-mini: tokens identical to HF generate on 8 steps × 4 prompts (batched, unequal lengths); max scaled logit error \(worst); KV cache vs full forward ‖Δ‖∞/‖ref‖∞ \(cacheWorst)")
    }

    private func stride0(_ row: [Float], _ stride: Int) -> [Float] { Swift.stride(from: 0, to: row.count, by: stride).map { row[$0] } }
}

final class GenerationCacheTests: XCTestCase {
    /// Decoder logits, fed in chunks of every size (1 token at a time, then uneven chunks), equal
    /// the full forward's logits at the same positions: to 1e-5 relative to the row's largest
    /// logit (‖a − r‖∞ / ‖r‖∞), and elementwise within the parity bound 1e-4·(1+|ref|). Only float
    /// rounding differs: the products have other shapes (one query row instead of T).
    func testCachedLogitsEqualFullForward() throws {
        var worstRelative: Float = 0, worstScaled: Float = 0
        for name in ForwardFixtures.tiny {
            let dir = ForwardFixtures.root.appendingPathComponent(name)
            let model = try NeoXModel(directory: dir)
            let sequences = try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt"))
            let T = sequences[0].count, V = model.config.vocabSize
            let full = try XCTUnwrap(model.forward(tokens: sequences, logits: .all).logits)
            for chunks in [Array(repeating: 1, count: T), [3, 1, T - 4], [T]] {
                let decoder = try Decoder(model: model, batch: sequences.count, capacity: T)
                var start = 0
                for size in chunks where size > 0 {
                    let rows = try decoder.feed(sequences.map { Array($0[start..<(start + size)]) })
                    for (b, row) in rows.enumerated() {
                        let offset = (b * T + start + size - 1) * V
                        let ours = try XCTUnwrap(row), reference = Array(full.data[offset..<(offset + V)])
                        worstRelative = max(worstRelative, GenerationFixtures.rowRelativeError(ours, reference))
                        worstScaled = max(worstScaled, ForwardFixtures.maxScaledError(ours, reference))
                    }
                    start += size
                }
                XCTAssertEqual(decoder.lengths, Array(repeating: T, count: sequences.count))
            }
        }
        XCTAssertLessThanOrEqual(worstRelative, 1e-5)
        XCTAssertLessThanOrEqual(worstScaled, 1e-4)
        print("KVCACHE tiny models: cached vs full-forward logits, max ‖Δ‖∞/‖ref‖∞ \(worstRelative), max |Δ|/(1+|ref|) \(worstScaled)")
    }

    /// Sequences fed in different calls (one waits while another advances) keep their own positions.
    func testRaggedFeedsKeepPositions() throws {
        let dir = ForwardFixtures.root.appendingPathComponent("parallel_erf_r025")
        let model = try NeoXModel(directory: dir)
        let a: [Int32] = [5, 17, 42, 7, 99, 3], b: [Int32] = [11, 250]
        let decoder = try Decoder(model: model, batch: 2, capacity: 8)
        _ = try decoder.feed([Array(a.prefix(4)), []])
        _ = try decoder.feed([Array(a.suffix(2)), b])
        let rows = try decoder.feed([[1], [2]])
        for (b, sequence) in [(0, a + [1]), (1, b + [2])] {
            let full = try XCTUnwrap(model.forward(tokens: [sequence], logits: .positions([[sequence.count - 1]])).logits)
            XCTAssertLessThanOrEqual(ForwardFixtures.maxScaledError(try XCTUnwrap(rows[b]), full.data), 1e-5)
        }
    }

    /// Activations of every position of prompt and continuation, equal to a full forward of the result.
    func testCapturedActivationsCoverGeneratedPositions() throws {
        let model = try NeoXModel(directory: ForwardFixtures.root.appendingPathComponent("sequential_tanh_r100"))
        let prompts: [[Int32]] = [[4, 8, 15], [16, 23, 42, 7, 1]]
        var collected: [[Float]] = [[], []]
        let d = model.config.hiddenSize
        let options = GenerationOptions(maxNewTokens: 5, capture: [.residMid(1)])
        let result = try model.generate(prompts: prompts, options: options) { hook, segments, values in
            XCTAssertEqual(hook, .residMid(1))
            for s in segments {
                XCTAssertEqual(collected[s.sequence].count, s.position * d, "positions arrive in order")
                collected[s.sequence] += values[(s.row * d)..<((s.row + s.count) * d)]
            }
        }
        for b in 0..<2 {
            let sequence = prompts[b] + result[b].tokens
            let full = try XCTUnwrap(model.forward(tokens: [sequence], capture: HookFilter([.residMid(1)])).activations[.residMid(1)])
            XCTAssertEqual(collected[b].count, full.data.count)
            XCTAssertLessThanOrEqual(ForwardFixtures.maxScaledError(collected[b], full.data), 1e-5)
        }
    }

    func testSamplingIsReproducibleAndPerSequence() throws {
        let model = try NeoXModel(directory: ForwardFixtures.root.appendingPathComponent("parallel_erf_r025"))
        let prompts: [[Int32]] = [[1, 2, 3], [9, 8, 7, 6, 5]]
        let sampling = Sampling.random(SamplingParameters(temperature: 0.9, topK: 40, topP: 0.9, seed: 1234))
        let options = GenerationOptions(maxNewTokens: 10, sampling: sampling)
        let first = try model.generate(prompts: prompts, options: options)
        XCTAssertEqual(first, try model.generate(prompts: prompts, options: options))
        // Sequence 0 does not depend on its batch-mates (its log-probabilities only to float rounding:
        // a batch of two runs products of another shape).
        XCTAssertEqual(first[0].tokens, try model.generate(prompts: [prompts[0]], options: options)[0].tokens)
        // top-k = 1 is greedy.
        let topOne = GenerationOptions(maxNewTokens: 10, sampling: .random(SamplingParameters(topK: 1, seed: 7)))
        XCTAssertEqual(try model.generate(prompts: prompts, options: topOne).map(\.tokens),
                       try model.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 10)).map(\.tokens))
    }

    func testStopsAndErrors() throws {
        let model = try NeoXModel(directory: ForwardFixtures.root.appendingPathComponent("sequential_relu_r025"))
        let greedy = try model.generate(prompts: [[1, 2, 3]], options: GenerationOptions(maxNewTokens: 6))[0]
        XCTAssertEqual(greedy.stopReason, .maxTokens)
        let stopAt = greedy.tokens[2]
        let stopped = try model.generate(prompts: [[1, 2, 3]], options: GenerationOptions(maxNewTokens: 6, stopTokens: [stopAt]))[0]
        XCTAssertEqual(stopped.stopReason, .endOfSequence)
        XCTAssertEqual(stopped.tokens, Array(greedy.tokens.prefix(through: greedy.tokens.firstIndex(of: stopAt)!)))
        let condition = try model.generate(prompts: [[1, 2, 3]], options: GenerationOptions(maxNewTokens: 6, stopCondition: { _, g in g.count == 2 }))[0]
        XCTAssertEqual(condition.tokens, Array(greedy.tokens.prefix(2)))
        XCTAssertEqual(condition.stopReason, .stopCondition)
        // Context of 16: a 14-token prompt has room for 2 tokens.
        let long = try model.generate(prompts: [Array(repeating: 5, count: 14)], options: GenerationOptions(maxNewTokens: 9))[0]
        XCTAssertEqual(long.tokens.count, 2)
        XCTAssertEqual(long.stopReason, .contextFull)
        XCTAssertThrowsError(try model.generate(prompts: [[]], options: GenerationOptions(maxNewTokens: 1))) {
            XCTAssertEqual(($0 as? NeoXError)?.kind, .invalidInput)
        }
        XCTAssertThrowsError(try model.generate(prompts: [[1, 999]], options: GenerationOptions(maxNewTokens: 1))) {
            XCTAssertEqual(($0 as? NeoXError)?.kind, .invalidInput)
        }
        let bad = Sampling.random(SamplingParameters(temperature: 0))
        XCTAssertThrowsError(try model.generate(prompts: [[1]], options: GenerationOptions(maxNewTokens: 1, sampling: bad))) {
            XCTAssertEqual(($0 as? NeoXError)?.kind, .invalidRequest)
        }
    }
}
