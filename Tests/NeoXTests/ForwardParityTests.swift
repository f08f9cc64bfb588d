import Formats
import Foundation
import TestSupport
import XCTest
@testable import NeoX

/// Where the committed engine fixtures live (written by Tests/Fixtures/generate_engine.py).
enum ForwardFixtures {
    static let root = RepositoryPaths.fixtures("engine")
    static let tiny = ["parallel_erf_r025", "sequential_tanh_r100", "parallel_tanh_nobias_tied", "sequential_relu_r025"]
    static let shared = RepositoryPaths.shared

    static func tokens(_ url: URL) throws -> [[Int32]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { line in
            line.split(separator: " ").map { Int32($0)! }
        }
    }

    static func reference(_ url: URL) throws -> [String: Tensor] {
        try SafeTensors.read(url).mapValues { Tensor(shape: $0.shape, data: try $0.float32()) }
    }

    /// max over elements of |a − r| / (1 + |r|); the parity requirement is ≤ 1e-4. Equal values
    /// (the −∞ of masked attention scores included) count as no error.
    static func maxScaledError(_ a: [Float], _ r: [Float]) -> Float {
        var worst: Float = 0
        for i in 0..<min(a.count, r.count) where a[i] != r[i] {
            let e = abs(a[i] - r[i]) / (1 + abs(r[i]))
            if !(e <= worst) { worst = e.isNaN ? .infinity : e }
        }
        return worst
    }
}

final class ForwardParityTests: XCTestCase {
    func checkParity(_ name: String, activation: MLPActivation? = nil, referenceFile: String = "reference.safetensors") throws {
        let dir = ForwardFixtures.root.appendingPathComponent(name)
        let model = try NeoXModel(directory: dir, activation: activation)
        let tokens = try ForwardFixtures.tokens(dir.appendingPathComponent("tokens.txt"))
        var reference = try ForwardFixtures.reference(dir.appendingPathComponent(referenceFile))
        var capture = HookFilter(patterns: Array(reference.keys))
        if referenceFile == "reference.safetensors" {
            // The rest of TransformerLens's hooks (Tests/Fixtures/generate_hooks.py): then every hook is compared.
            let hooks = RepositoryPaths.fixtures("hooks").appendingPathComponent(name).appendingPathComponent("reference.safetensors")
            reference.merge(try ForwardFixtures.reference(hooks)) { engine, _ in engine }
            capture = .all
        }
        let result = try model.forward(tokens: tokens, capture: capture, logits: .all)
        XCTAssertEqual(Set(result.activations.names), Set(reference.keys), "\(name): hook set differs from HF's")
        var report: [String] = []
        var worst: Float = 0
        for (hook, ref) in reference.sorted(by: { $0.key < $1.key }) {
            guard let ours = result.activations[hook] else { continue }
            XCTAssertEqual(ours.shape, ref.shape, "\(name) \(hook)")
            let error = ForwardFixtures.maxScaledError(ours.data, ref.data)
            worst = max(worst, error)
            XCTAssertLessThanOrEqual(error, 1e-4, "\(name) \(hook)")
            report.append("\(hook)=\(error)")
        }
        XCTAssertEqual(result.logits?.data, result.activations["logits"]?.data)
        print("PARITY \(name)\(referenceFile == "reference.safetensors" ? "" : " (\(referenceFile))"): max scaled error \(worst) over \(reference.count) hooks")
    }

    func testParallelErfRotaryQuarter() throws { try checkParity("parallel_erf_r025") }
    func testSequentialTanhRotaryFull() throws { try checkParity("sequential_tanh_r100") }
    func testParallelTanhNoBiasTied() throws { try checkParity("parallel_tanh_nobias_tied") }
    func testSequentialReluLayerNormEps() throws { try checkParity("sequential_relu_r025") }
    func testTanhOverrideOnErfModel() throws {
        try checkParity("parallel_erf_r025", activation: .geluTanh, referenceFile: "reference_tanh.safetensors")
    }
}

/// The real pythia-mini suite in ../shared on the first 2048 tokens of mini-Pile row 0, against
/// float64 statistics of HF's activations.
final class ForwardPythiaMiniTests: XCTestCase {
    struct Stats: Decodable {
        var shape: [Int]; var count: Int; var sum: Double; var sumabs: Double; var sumsq: Double; var maxabs: Double
        var start: Int; var stride: Int; var values: [Double]
    }

    func checkStep(_ step: String) throws {
        let dir = ForwardFixtures.shared.appendingPathComponent("models/pythia-mini/\(step)")
        guard FileManager.default.fileExists(atPath: dir.path) else { throw XCTSkip("\(dir.path) not present") }
        let fixture = ForwardFixtures.root.appendingPathComponent("pythia-mini")
        let tokens = try ForwardFixtures.tokens(fixture.appendingPathComponent("row0_tokens.txt"))
        XCTAssertEqual(tokens.map(\.count), [2048])
        try checkMinipileRow(tokens[0])
        let expected = try JSONDecoder().decode([String: Stats].self,
                                                from: Data(contentsOf: fixture.appendingPathComponent("\(step).json")))
        let model = try NeoXModel(directory: dir)
        var seen = Set<String>()
        var worstSample: Double = 0, worstSum: Double = 0
        // The residual stream here; the other hooks are HookParityTests'.
        _ = try model.forward(tokens: tokens, capture: HookFilter(patterns: Array(expected.keys)), logits: .none) { hook, shape, values in
            let name = hook.name
            guard let s = expected[name] else { XCTFail("\(step): unexpected hook \(name)"); return }
            seen.insert(name)
            XCTAssertEqual(shape, s.shape, "\(step) \(name)")
            var sum = 0.0, sumabs = 0.0, sumsq = 0.0, maxabs = 0.0
            for v in values { let x = Double(v); sum += x; sumabs += abs(x); sumsq += x * x; maxabs = max(maxabs, abs(x)) }
            for (i, r) in s.values.enumerated() {
                let e = abs(Double(values[s.start + i * s.stride]) - r) / (1 + abs(r))
                worstSample = max(worstSample, e)
                XCTAssertLessThanOrEqual(e, 1e-4, "\(step) \(name) sample \(i)")
            }
            let sumErrors = [abs(sum - s.sum) / max(s.sumabs, 1e-30), abs(sumabs - s.sumabs) / s.sumabs,
                             abs(sumsq - s.sumsq) / s.sumsq, abs(maxabs - s.maxabs) / (1 + s.maxabs)]
            worstSum = max(worstSum, sumErrors.max()!)
            for e in sumErrors { XCTAssertLessThanOrEqual(e, 1e-4, "\(step) \(name) sums \(sumErrors)") }
        }
        XCTAssertEqual(seen, Set(expected.keys), "\(step): hooks")
        print("PARITY pythia-mini \(step): max sample error \(worstSample), max relative sum error \(worstSum)")
    }

    /// The committed ids really are row 0 of ../shared's document.bin (inline .idx/.bin read).
    func checkMinipileRow(_ tokens: [Int32]) throws {
        let base = ForwardFixtures.shared.appendingPathComponent("data/minipile/document")
        guard let idx = FileManager.default.contents(atPath: base.path + ".idx"),
              let bin = FileManager.default.contents(atPath: base.path + ".bin") else { return }
        XCTAssertEqual(idx.prefix(9), Data("MMIDIDX\0\0".utf8))
        let count = idx.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 18, as: UInt64.self)) }
        let pointer = idx.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 34 + 4 * count, as: Int64.self)) }
        let row = bin.withUnsafeBytes { raw in (0..<2048).map { Int32(raw.loadUnaligned(fromByteOffset: pointer + 2 * $0, as: UInt16.self)) } }
        XCTAssertEqual(row, tokens)
    }

    func testStep0() throws { try checkStep("step0") }
    func testStep4() throws { try checkStep("step4") }
    func testStep16() throws { try checkStep("step16") }
    func testStep64() throws { try checkStep("step64") }
    func testStep256() throws { try checkStep("step256") }
    func testStep512() throws { try checkStep("step512") }
    func testStep1000PytorchBin() throws { try checkStep("step1000") }
    func testStep2000Sharded() throws { try checkStep("step2000") }
}
