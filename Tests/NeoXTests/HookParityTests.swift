import Formats
import Foundation
import TestSupport
import XCTest
@testable import NeoX

/// Where Tests/Fixtures/generate_hooks.py writes: TransformerLens's hook vocabulary and interventions.
enum HookFixtures {
    static let root = RepositoryPaths.fixtures("hooks")

    static func pythiaMiniConfig() throws -> NeoXConfig? {
        let dir = ForwardFixtures.shared.appendingPathComponent("models/pythia-mini/step2000")
        guard FileManager.default.fileExists(atPath: dir.path) else { return nil }
        return try Checkpoint(directory: dir).config
    }
}

/// Every hook beyond the residual stream on every pythia-mini step, against float64 statistics of
/// the HF-side reference (the tiny configurations are in ForwardParityTests, hook by hook).
final class HookParityTests: XCTestCase {
    struct Stats: Decodable {
        var shape: [Int]; var count: Int; var neginf: Int; var sum: Double; var sumabs: Double; var sumsq: Double; var maxabs: Double
        var start: Int; var stride: Int; var values: [Double?]
    }

    func checkStep(_ step: String) throws {
        let dir = ForwardFixtures.shared.appendingPathComponent("models/pythia-mini/\(step)")
        guard FileManager.default.fileExists(atPath: dir.path) else { throw XCTSkip("\(dir.path) not present") }
        let fixture = HookFixtures.root.appendingPathComponent("pythia-mini")
        let tokens = try ForwardFixtures.tokens(fixture.appendingPathComponent("tokens.txt"))
        let expected = try JSONDecoder().decode([String: Stats].self, from: Data(contentsOf: fixture.appendingPathComponent("\(step).json")))
        let model = try NeoXModel(directory: dir)
        var seen = Set<String>()
        var worstSample = 0.0, worstSum = 0.0
        _ = try model.forward(tokens: tokens, capture: HookFilter(patterns: Array(expected.keys))) { hook, shape, values in
            let name = hook.name
            guard let s = expected[name] else { return XCTFail("\(step): unexpected hook \(name)") }
            seen.insert(name)
            XCTAssertEqual(shape, s.shape, "\(step) \(name)")
            var sum = 0.0, sumabs = 0.0, sumsq = 0.0, maxabs = 0.0, neginf = 0
            for v in values {
                guard v.isFinite else { if v == -.infinity { neginf += 1 }; continue }
                let x = Double(v); sum += x; sumabs += abs(x); sumsq += x * x; maxabs = max(maxabs, abs(x))
            }
            XCTAssertEqual(neginf, s.neginf, "\(step) \(name): the masked scores are −∞ exactly where TransformerLens puts them")
            for (i, r) in s.values.enumerated() {
                let v = values[s.start + i * s.stride]
                guard let r else { XCTAssertEqual(v, -.infinity, "\(step) \(name) sample \(i)"); continue }
                let e = abs(Double(v) - r) / (1 + abs(r))
                worstSample = max(worstSample, e)
                XCTAssertLessThanOrEqual(e, 1e-4, "\(step) \(name) sample \(i)")
            }
            let sumErrors = [abs(sum - s.sum) / max(s.sumabs, 1e-30), abs(sumabs - s.sumabs) / max(s.sumabs, 1e-30),
                             abs(sumsq - s.sumsq) / max(s.sumsq, 1e-30), abs(maxabs - s.maxabs) / (1 + s.maxabs)]
            worstSum = max(worstSum, sumErrors.max()!)
            for e in sumErrors { XCTAssertLessThanOrEqual(e, 1e-4, "\(step) \(name) sums \(sumErrors)") }
        }
        XCTAssertEqual(seen, Set(expected.keys), "\(step): hooks")
        print("HOOK PARITY pythia-mini \(step): \(seen.count) hooks, max sample error \(worstSample), max relative sum error \(worstSum)")
    }

    func testStep0() throws { try checkStep("step0") }
    func testStep4() throws { try checkStep("step4") }
    func testStep16() throws { try checkStep("step16") }
    func testStep64() throws { try checkStep("step64") }
    func testStep256() throws { try checkStep("step256") }
    func testStep512() throws { try checkStep("step512") }
    func testStep1000() throws { try checkStep("step1000") }
    func testStep2000() throws { try checkStep("step2000") }

    /// Names and shapes against a real TransformerLens HookedTransformer on pythia-mini
    /// (`tl_hooks.json`, written by generate_hooks.py with transformer_lens installed).
    func testNamesAndShapesAreTransformerLens() throws {
        guard let config = try HookFixtures.pythiaMiniConfig() else { throw XCTSkip("pythia-mini not present") }
        struct TL: Decodable { var cache: [String: [Int]]; var hook_points: [String] }
        let tl = try JSONDecoder().decode(TL.self, from: Data(contentsOf: HookFixtures.root.appendingPathComponent("tl_hooks.json")))
        let tokens = try ForwardFixtures.tokens(HookFixtures.root.appendingPathComponent("pythia-mini/tokens.txt"))
        let (B, T) = (tokens.count, tokens[0].count)
        let ours = HookPoint.all(for: config)
        let ourNames = Set(ours.map(\.name))
        // Every hook TransformerLens fires (use_attn_result on) is ours, with its shape.
        for (name, shape) in tl.cache {
            guard let point = HookPoint(name: name) else { XCTFail("TransformerLens hook \(name) is not ours"); continue }
            XCTAssertEqual(point.shape(config: config, batch: B, length: T), shape, name)
        }
        // Ours beyond TransformerLens's: only `logits`. TransformerLens's hook points we do not
        // emit: only the input copies it fires under use_attn_in / use_split_qkv_input / use_hook_mlp_in.
        XCTAssertEqual(ourNames.subtracting(tl.cache.keys), ["logits"])
        let notOurs = Set(tl.hook_points).subtracting(ourNames)
        XCTAssertEqual(Set(notOurs.map { $0.split(separator: ".").last.map(String.init)! }),
                       ["hook_attn_in", "hook_q_input", "hook_k_input", "hook_v_input", "hook_mlp_in"])
        XCTAssertEqual(notOurs.count, 5 * config.numLayers)
        // And the forward emits each in TransformerLens's shape.
        let model = try NeoXModel(directory: ForwardFixtures.shared.appendingPathComponent("models/pythia-mini/step2000"))
        _ = try model.forward(tokens: tokens, capture: .all) { hook, shape, _ in
            if let expected = tl.cache[hook.name] { XCTAssertEqual(shape, expected, hook.name) }
        }
    }
}

/// Interventions against HF forwards edited by PyTorch hooks doing the same (generate_hooks.py).
final class InterventionParityTests: XCTestCase {
    struct Manifest: Decodable {
        struct Case: Decodable { var name: String; var hook: String; var index: String; var action: String; var source: String? }
        var tokens: [[Int32]]; var compact: Bool; var cases: [Case]
    }

    func check(_ name: String, model directory: URL) throws {
        guard FileManager.default.fileExists(atPath: directory.path) else { throw XCTSkip("\(directory.path) not present") }
        let base = HookFixtures.root.appendingPathComponent("interventions")
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: base.appendingPathComponent("\(name).json")))
        let reference = try ForwardFixtures.reference(base.appendingPathComponent("\(name).safetensors"))
        let model = try NeoXModel(directory: directory)
        let tokens = manifest.tokens
        let (B, T, V) = (tokens.count, tokens[0].count, model.config.vocabSize)
        func compare(_ logits: Tensor, _ key: String) -> Float {
            var worst: Float = 0
            if manifest.compact {
                // The last position of sequence 0, and every next-token NLL.
                worst = ForwardFixtures.maxScaledError(Array(logits.data[((T - 1) * V)..<(T * V)]), reference["\(key).logits"]!.data)
                let nll = reference["\(key).nll"]!.data
                for b in 0..<B {
                    for t in 0..<(T - 1) {
                        let row = logits.data[((b * T + t) * V)..<((b * T + t + 1) * V)]
                        let m = row.max()!
                        let lse = Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) })
                        let ours = Float(lse - Double(row[row.startIndex + Int(tokens[b][t + 1])]))
                        worst = max(worst, abs(ours - nll[b * (T - 1) + t]) / (1 + abs(nll[b * (T - 1) + t])))
                    }
                }
            } else {
                XCTAssertEqual(logits.shape, reference["\(key).logits"]!.shape)
                worst = ForwardFixtures.maxScaledError(logits.data, reference["\(key).logits"]!.data)
            }
            XCTAssertLessThanOrEqual(worst, 1e-4, "\(name) \(key)")
            return worst
        }
        let clean = try model.forward(tokens: tokens, logits: .all).logits!
        var worst = compare(clean, "clean")
        for item in manifest.cases {
            let (point, selection) = try Intervention.parseTarget(item.hook + item.index)
            let action: InterventionAction
            switch item.action {
            case "zero": action = .zero
            case "mean": action = .mean
            case "patch": action = .patch(reference["\(item.name).source"]!)
            case "add": action = .add(reference["\(item.name).source"]!)
            default: return XCTFail("unknown action \(item.action)")
            }
            let edited = try model.forward(tokens: tokens, logits: .all, interventions: [Intervention(point, selection, action)]).logits!
            let error = compare(edited, item.name)
            worst = max(worst, error)
            XCTAssertGreaterThan(ForwardFixtures.maxScaledError(edited.data, clean.data), 1e-4, "\(name) \(item.name) changed nothing")
        }
        print("INTERVENTION PARITY \(name): \(manifest.cases.count) interventions, max scaled logit error \(worst)")
    }

    func testParallelErf() throws { try check("parallel_erf_r025", model: ForwardFixtures.root.appendingPathComponent("parallel_erf_r025")) }
    func testSequentialTanh() throws { try check("sequential_tanh_r100", model: ForwardFixtures.root.appendingPathComponent("sequential_tanh_r100")) }
    func testPythiaMiniStep2000() throws {
        try check("pythia-mini-step2000", model: ForwardFixtures.shared.appendingPathComponent("models/pythia-mini/step2000"))
    }
}

/// The hooks' and interventions' API: what they cost, what they refuse.
final class HookAPITests: XCTestCase {
    let dir = ForwardFixtures.root.appendingPathComponent("parallel_erf_r025")

    func testNamesRoundTripAndShapes() throws {
        let model = try NeoXModel(directory: dir)
        for point in HookPoint.all(for: model.config) { XCTAssertEqual(HookPoint(name: point.name), point, point.name) }
        XCTAssertNil(HookPoint(name: "blocks.0.attn.hook_nothing"))
        XCTAssertNil(HookPoint(name: "blocks.01.hook_resid_pre"))
        let c = model.config
        XCTAssertEqual(HookPoint.block(0, .pattern).shape(config: c, batch: 2, length: 5), [2, c.numHeads, 5, 5])
        XCTAssertEqual(HookPoint.block(0, .result).shape(config: c, batch: 2, length: 5), [2, 5, c.numHeads, c.hiddenSize])
        XCTAssertEqual(HookPoint.lnFinalScale.shape(config: c, batch: 2, length: 5), [2, 5, 1])
    }

    /// The [B, H, T, T] path (taken only when scores or patterns are asked for) gives the same
    /// values as the fast causal path; patterns are causal distributions.
    func testMatrixPathAgreesWithFastPath() throws {
        let model = try NeoXModel(directory: dir)
        let tokens = try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt"))
        let fast = try model.forward(tokens: tokens, capture: HookFilter("blocks.*.attn.hook_z"), logits: .all)
        let slow = try model.forward(tokens: tokens, capture: HookFilter("blocks.1.attn.hook_pattern,blocks.*.attn.hook_z"), logits: .all)
        XCTAssertEqual(slow.activations.names.filter { $0.hasSuffix("pattern") }, ["blocks.1.attn.hook_pattern"], "only the block asked for")
        for name in fast.activations.names {
            XCTAssertLessThanOrEqual(ForwardFixtures.maxScaledError(slow.activations[name]!.data, fast.activations[name]!.data), 1e-6, name)
        }
        XCTAssertLessThanOrEqual(ForwardFixtures.maxScaledError(slow.logits!.data, fast.logits!.data), 1e-6)
        let pattern = slow.activations["blocks.1.attn.hook_pattern"]!
        let T = tokens[0].count
        for row in 0..<(pattern.data.count / T) {
            let i = row % T, values = pattern.data[(row * T)..<((row + 1) * T)]
            XCTAssertEqual(values.reduce(0, +), 1, accuracy: 1e-5)
            XCTAssertTrue(values.dropFirst(i + 1).allSatisfy { $0 == 0 }, "no attention to the future")
        }
    }

    /// A no-op edit leaves everything as it was; the captured hook shows the edited value.
    func testEditsFlowOnAndShowInTheCapture() throws {
        let model = try NeoXModel(directory: dir)
        let tokens = try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt"))
        let clean = try model.forward(tokens: tokens, capture: HookFilter("blocks.0.mlp.hook_post"), logits: .all)
        let noop = try model.forward(tokens: tokens, capture: HookFilter("blocks.0.mlp.hook_post"), logits: .all,
                                     interventions: [Intervention(.block(0, .mlpPost), .all, .custom { _, _ in })])
        XCTAssertEqual(noop.logits?.data, clean.logits?.data)
        let zeroed = try model.forward(tokens: tokens, capture: HookFilter("blocks.0.mlp.hook_post"), logits: .all,
                                       interventions: [Intervention(.block(0, .mlpPost), HookSelection(parsing: "[:, :, 3]"), .zero)])
        let post = zeroed.activations["blocks.0.mlp.hook_post"]!, ff = model.config.intermediateSize
        for row in 0..<(post.data.count / ff) {
            XCTAssertEqual(post.data[row * ff + 3], 0)
            XCTAssertEqual(post.data[row * ff + 4], clean.activations["blocks.0.mlp.hook_post"]!.data[row * ff + 4])
        }
        XCTAssertNotEqual(zeroed.logits?.data, clean.logits?.data)
    }

    func testInterventionErrors() throws {
        let model = try NeoXModel(directory: dir)
        let tokens = try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt"))
        func kind(_ interventions: [Intervention], capture: String? = nil) -> NeoXError.Kind? {
            do {
                _ = try model.forward(tokens: tokens, capture: capture.map { HookFilter($0) } ?? .none,
                                      logits: capture == nil ? .all : .none, interventions: interventions)
                return nil
            } catch let error as NeoXError { return error.kind } catch { return nil }
        }
        let z = HookPoint.block(1, .z)
        XCTAssertEqual(kind([Intervention(z, try HookSelection(parsing: "[:, :, 9]"), .zero)]), .invalidIntervention, "head out of range")
        XCTAssertEqual(kind([Intervention(z, try HookSelection(parsing: "[:, :, :, :, 0]"), .zero)]), .invalidIntervention, "too many axes")
        XCTAssertEqual(kind([Intervention(z, .all, .patch(Tensor(shape: [1, 2], data: [0, 0])))]), .invalidIntervention, "patch shape")
        XCTAssertEqual(kind([Intervention(z, .all, .add(Tensor(shape: [5], data: [Float](repeating: 1, count: 5))))]), .invalidIntervention)
        XCTAssertEqual(kind([Intervention(.residPost(0), .all, .add(Tensor(shape: [1], data: [.nan])))]), .invalidIntervention, "NaN refused")
        XCTAssertEqual(kind([Intervention(.logits, .all, .zero)]), .invalidIntervention)
        XCTAssertEqual(kind([Intervention(.block(2, .z), .all, .zero)], capture: "blocks.0.hook_resid_post"), .invalidIntervention,
                       "an edit after the pass stops would change nothing")
        XCTAssertEqual(kind([Intervention(.block(7, .z), .all, .zero)]), .unknownHook)
        XCTAssertThrowsError(try HookSelection(parsing: "[:, ::2]"))
        XCTAssertThrowsError(try HookSelection(parsing: "[x]"))
        XCTAssertThrowsError(try Intervention.parseTarget("blocks.0.attn.hook_zz[0]"))
        XCTAssertEqual(try HookSelection(parsing: " [ :, -1, 2:5 ] ").axes, [.all, .index(-1), .range(2, 5)])
    }
}
