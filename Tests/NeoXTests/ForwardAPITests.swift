import Formats
import Foundation
import XCTest
@testable import NeoX

/// The engine's API around the math: hook filtering, streaming, partial work, errors, the writer.
final class ForwardAPITests: XCTestCase {
    let dir = ForwardFixtures.root.appendingPathComponent("parallel_erf_r025")
    let sequentialDir = ForwardFixtures.root.appendingPathComponent("sequential_tanh_r100")

    func tokens(_ d: URL? = nil) throws -> [[Int32]] { try ForwardFixtures.tokens((d ?? dir).appendingPathComponent("tokens.txt")) }

    func testHookFilterGlobs() {
        let names = HookPoint.all(for: NeoXConfig(vocabSize: 10, hiddenSize: 4, numLayers: 12, numHeads: 1, intermediateSize: 8,
                                                  maxPositionEmbeddings: 8, rotaryPct: 0.5)).map(\.name)
        XCTAssertEqual(HookFilter("*").select(names), names)
        XCTAssertEqual(HookFilter("blocks.*.hook_resid_post").select(names).count, 12)
        XCTAssertEqual(HookFilter("blocks.1.hook_*").select(names), ["blocks.1.hook_resid_pre", "blocks.1.hook_attn_out",
                                                                       "blocks.1.hook_mlp_out", "blocks.1.hook_resid_post"])
        XCTAssertEqual(HookFilter("blocks.1.attn.*").select(names).count, 9)
        XCTAssertEqual(HookFilter("blocks.*.attn.hook_pattern").select(names).count, 12)
        XCTAssertEqual(HookFilter(" logits , ln_final.* ").select(names), ["ln_final.hook_scale", "ln_final.hook_normalized", "logits"])
        XCTAssertEqual(HookFilter("blocks.1?.hook_attn_out").select(names), ["blocks.10.hook_attn_out", "blocks.11.hook_attn_out"])
        XCTAssertEqual(HookFilter("*resid_mid").select(names), [], "parallel models have no resid_mid")
        XCTAssertTrue(HookFilter.none.select(names).isEmpty)
        XCTAssertFalse(HookFilter("blocks.1").matches("blocks.1.hook_resid_pre"), "patterns match whole names")
        XCTAssertTrue(HookFilter("**a**").matches("xxaxx"))
        XCTAssertEqual(HookPoint(name: "blocks.11.hook_mlp_out")?.layer, 11)
        XCTAssertNil(HookPoint(name: "logits")?.layer)
    }

    func testObserverStreamsSameValuesWithoutStoring() throws {
        let model = try NeoXModel(directory: dir)
        let stored = try model.forward(tokens: tokens(), capture: .all, logits: .all)
        var seen: [HookPoint] = []
        let streamed = try model.forward(tokens: tokens(), capture: .all) { name, shape, values in
            seen.append(name)
            XCTAssertEqual(shape, stored.activations[name]!.shape, name.name)
            XCTAssertEqual(Array(values), stored.activations[name]!.data, name.name)
        }
        XCTAssertTrue(streamed.activations.isEmpty)
        XCTAssertEqual(seen, model.hookPoints, "observer sees every hook once, in production order")
    }

    func testObserverErrorAborts() throws {
        struct Stop: Error {}
        let model = try NeoXModel(directory: dir)
        var calls = 0
        XCTAssertThrowsError(try model.forward(tokens: tokens(), capture: .all) { _, _, _ in calls += 1; throw Stop() }) {
            XCTAssertTrue($0 is Stop)
        }
        XCTAssertEqual(calls, 1)
    }

    func testStopsAfterLastNeededLayerAndPartialLoad() throws {
        let full = try NeoXModel(directory: dir)
        let expected = try full.forward(tokens: tokens(), capture: HookFilter("blocks.1.hook_resid_post"))
        XCTAssertEqual(expected.layersRun, 2)
        XCTAssertEqual(expected.activations.names, ["blocks.1.hook_resid_post"])
        XCTAssertEqual(try full.forward(tokens: tokens()).layersRun, 0)

        let partial = try NeoXModel(directory: dir, layers: 2, loadUnembedding: false)
        XCTAssertEqual(partial.loadedLayers, 2)
        XCTAssertFalse(partial.hookPoints.contains(.lnFinalNormalized))
        let got = try partial.forward(tokens: tokens(), capture: HookFilter("blocks.1.hook_resid_post"))
        XCTAssertEqual(got.activations["blocks.1.hook_resid_post"], expected.activations["blocks.1.hook_resid_post"])
        XCTAssertThrowsError(try partial.forward(tokens: tokens(), capture: HookFilter("blocks.2.*"))) {
            XCTAssertTrue("\($0)".contains("blocks.2"), "\($0)")
            XCTAssertEqual(($0 as? NeoXError)?.kind, .notLoaded)
        }
        XCTAssertThrowsError(try partial.forward(tokens: tokens(), logits: .all))

        let headless = try NeoXModel(directory: dir, loadUnembedding: false)
        XCTAssertNotNil(try headless.forward(tokens: tokens(), capture: HookFilter("ln_final.*")).activations[.lnFinalNormalized])
        XCTAssertThrowsError(try headless.forward(tokens: tokens(), capture: HookFilter("logits"))) {
            XCTAssertTrue("\($0)".contains("unembedding"), "\($0)")
        }
        XCTAssertThrowsError(try NeoXModel(directory: dir, layers: 4))
    }

    func testResidMidOnlyForSequential() throws {
        let parallel = try NeoXModel(directory: dir)
        XCTAssertThrowsError(try parallel.forward(tokens: tokens(), capture: HookFilter("*resid_mid"))) {
            XCTAssertEqual(($0 as? NeoXError)?.kind, .unknownHook)
            XCTAssertTrue("\($0)".contains("*resid_mid") && "\($0)".contains("parallel-residual"), "\($0)")
        }
        XCTAssertThrowsError(try ForwardPlan(config: parallel.config, hooks: [.residMid(0)]))
        let sequential = try NeoXModel(directory: sequentialDir)
        let got = try sequential.forward(tokens: tokens(sequentialDir), capture: HookFilter("blocks.0.*"))
        let mid = got.activations["blocks.0.hook_resid_mid"]!, pre = got.activations["blocks.0.hook_resid_pre"]!
        let attn = got.activations["blocks.0.hook_attn_out"]!, mlp = got.activations["blocks.0.hook_mlp_out"]!
        let post = got.activations["blocks.0.hook_resid_post"]!
        XCTAssertEqual(mid.data, zip(attn.data, pre.data).map { $0 + $1 })
        XCTAssertEqual(post.data, zip(mlp.data, mid.data).map { $0 + $1 })
    }

    func testLogitPositionsAndChunkedUnembed() throws {
        let model = try NeoXModel(directory: dir)
        let toks = try tokens()
        let (B, T, V, d) = (toks.count, toks[0].count, model.config.vocabSize, model.config.hiddenSize)
        let full = try model.forward(tokens: toks, capture: HookFilter([.lnFinalNormalized]), logits: .all)
        let all = full.logits!
        XCTAssertEqual(all.shape, [B, T, V])
        let positions = [[T - 1, 0, 3], [5]]
        let some = try model.forward(tokens: toks, logits: .positions(positions)).logits!
        XCTAssertEqual(some.shape, [4, V])
        for (r, (b, t)) in [(0, T - 1), (0, 0), (0, 3), (1, 5)].enumerated() {
            let expected = Array(all.data[((b * T + t) * V)..<((b * T + t + 1) * V)])
            XCTAssertLessThanOrEqual(ForwardFixtures.maxScaledError(Array(some.data[(r * V)..<((r + 1) * V)]), expected), 1e-5)
        }
        // Unembedding ln_final rows three at a time reproduces the logits.
        let normalized = full.activations[.lnFinalNormalized]!.data
        var chunked = [Float](repeating: 0, count: B * T * V)
        var row = 0
        while row < B * T {
            let n = min(3, B * T - row)
            try normalized.withUnsafeBufferPointer { src in
                try chunked.withUnsafeMutableBufferPointer { dst in
                    try model.unembed(normalizedHidden: UnsafeBufferPointer(rebasing: src[(row * d)..<((row + n) * d)]), rowCount: n,
                                      into: UnsafeMutableBufferPointer(rebasing: dst[(row * V)..<((row + n) * V)]))
                }
            }
            row += n
        }
        XCTAssertLessThanOrEqual(ForwardFixtures.maxScaledError(chunked, all.data), 1e-5)
        XCTAssertThrowsError(try model.forward(tokens: toks, logits: .positions([[0]]))) { XCTAssertTrue("\($0)".contains("batch has 2"), "\($0)") }
        XCTAssertThrowsError(try model.forward(tokens: toks, logits: .positions([[T], []]))) { XCTAssertTrue("\($0)".contains("\(T)"), "\($0)") }
    }

    func testInputErrors() throws {
        let model = try NeoXModel(directory: dir)   // max_position_embeddings 64, vocab 300
        func message(_ batch: [[Int32]]) -> String {
            do { _ = try model.forward(tokens: batch, capture: .all); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message([[Int32]](repeating: [Int32](repeating: 1, count: 65), count: 1)).contains("65"))
        XCTAssertTrue(message([[Int32]](repeating: [Int32](repeating: 1, count: 65), count: 1)).contains("64"))
        XCTAssertNoThrow(try model.forward(tokens: [[Int32](repeating: 1, count: 64)], capture: .all))
        XCTAssertTrue(message([]).contains("empty input"))
        XCTAssertTrue(message([[]]).contains("empty input"))
        XCTAssertTrue(message([[1, 2, 300]]).contains("token id 300 at sequence 0, position 2"))
        XCTAssertTrue(message([[1, 2], [-1, 0]]).contains("token id -1 at sequence 1, position 0"))
        XCTAssertTrue(message([[1, 2, 3], [1, 2]]).contains("equal length"))
    }

    func testConcurrentForwardsAgree() throws {
        let model = try NeoXModel(directory: dir)
        let toks = try tokens()
        let expected = try model.forward(tokens: toks, logits: .all).logits!
        let results = ResultBox()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            results.append(try? model.forward(tokens: toks, logits: .all).logits)
        }
        XCTAssertEqual(results.values.count, 4)
        for r in results.values { XCTAssertEqual(r, expected) }
    }

    func testSafeTensorsWriterRoundTrip() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fwd-writer-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let tensors = ["b.second": Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, -6.5]),
                       "a\"quoted": Tensor(shape: [1], data: [.pi]), "empty": Tensor(shape: [0, 4], data: [])]
        try SafeTensorsWriter.write(tensors, to: url, metadata: ["note": "x"])
        let raw = try Data(contentsOf: url)
        let headerLength = raw.withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        XCTAssertEqual((8 + headerLength) % 8, 0, "data section is 8-byte aligned")
        let read = try SafeTensors.read(url)
        XCTAssertEqual(Set(read.keys), Set(tensors.keys))
        for (name, t) in tensors {
            XCTAssertEqual(read[name]!.shape, t.shape)
            XCTAssertEqual(try read[name]!.float32(), t.data)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
            .filter { $0.contains(url.lastPathComponent) && $0.hasSuffix(".tmp") }
        XCTAssertEqual(leftovers, [])
        XCTAssertThrowsError(try SafeTensorsWriter.write(tensors, to: URL(fileURLWithPath: "/nonexistent-dir/x.safetensors")))
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [Tensor?] = []
    func append(_ value: Tensor?) { lock.lock(); values.append(value); lock.unlock() }
}

final class ForwardKernelTests: XCTestCase {
    func testVectorExpMatchesExpf() {
        var worst: Float = 0
        var x: Float = -90
        while x < 0.5 {
            let lanes = (0..<16).map { x + Float($0) * 0.0007 }
            let e = lanes.map(KernelMath.exp)
            for i in 0..<16 {
                let ref = expf(lanes[i])
                if lanes[i] >= -87 { worst = max(worst, abs(e[i] - ref) / ref) } else { XCTAssertEqual(e[i], 0) }
            }
            x += 0.0113
        }
        XCTAssertLessThan(worst, 3e-7)
        print("KernelMath.exp max relative error vs expf: \(worst)")
    }

    func testCausalSoftmaxRow() {
        for visible in [1, 5, 16, 17, 40] {
            var row = (0..<48).map { Float(sin(Double($0) * 1.7)) * 9 }
            let ref = row[0..<visible].map { expf($0 - row[0..<visible].max()!) }
            let total = ref.reduce(0, +)
            row.withUnsafeMutableBufferPointer { Kernels.causalSoftmaxRow($0.baseAddress!, visible: visible, count: 48) }
            for j in 0..<visible { XCTAssertEqual(row[j], ref[j] / total, accuracy: 1e-6) }
            XCTAssertEqual(Array(row[visible...]), [Float](repeating: 0, count: 48 - visible))
        }
    }
}
