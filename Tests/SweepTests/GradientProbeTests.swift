import Formats
import Foundation
import NeoX
import ProbeStats
import Results
import TestSupport
import XCTest
@testable import Sweep

/// The `gradients` probe on a tiny fixture model against the committed PyTorch float64 gradients
/// (Tests/Fixtures/grad, written by generate_grad.py): the loss, every tensor's gradient norm and
/// max, the OV-gradient spectra recomputed from the reference, and cosine_previous.
final class GradientProbeTests: XCTestCase {
    func testStatisticsOfTheReferenceGradients() throws {
        let dir = RepositoryPaths.fixtures("engine/parallel_erf_r025")
        let model = try NeoXModel(directory: dir)
        let tokens = try String(contentsOf: dir.appendingPathComponent("tokens.txt"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: " ").map { Int32($0)! } }
        let reference = try SafeTensors.read(RepositoryPaths.fixtures("grad").appendingPathComponent("parallel_erf_r025.safetensors"))
            .mapValues { try $0.float32() }
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: RepositoryPaths.fixtures("grad")
            .appendingPathComponent("parallel_erf_r025.json"))) as? [String: Any])

        let probe = GradientProbe()
        // One sequence per pass: the probe's float64 pass sums must give the whole batch's gradient.
        let rows = try probe.measure(model: model, step: 7, sequences: tokens, tokensPerPass: 1)
        func value(_ site: String, _ metric: String, layer: Int? = nil) -> Double? {
            rows.first { $0.site == site && $0.metric == metric && (layer == nil || $0.layer == layer) }?.value
        }
        let loss = try XCTUnwrap(summary["loss"] as? Double)
        XCTAssertEqual(try XCTUnwrap(value(GradientProbe.lossSite, MetricName.loss)), loss, accuracy: 1e-6 * loss)
        XCTAssertEqual(value(GradientProbe.lossSite, MetricName.tokenCount), summary["token_count"] as? Double)

        for name in NeoXModel.parameterNames(for: model.config) {
            let ref = try XCTUnwrap(reference[name], name)
            let norm = ref.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let site = GradientProbe.site(tensor: name)
            XCTAssertEqual(try XCTUnwrap(value(site, MetricName.frobeniusNorm), name), norm, accuracy: 1e-4 * norm, name)
            XCTAssertEqual(try XCTUnwrap(value(site, MetricName.maxAbs), name), Double(ref.map(abs).max()!), accuracy: 1e-4 * norm, name)
            XCTAssertNil(value(site, MetricName.cosinePrevious), "no previous checkpoint yet")
        }
        // ∂(W_O·W_V) of head 1 in layer 2 from the reference gradients.
        let heads = model.weights.attentionHeads(layer: 2), d = model.config.hiddenSize
        let grads = AttentionHeadWeights(qkvWeight: reference["gpt_neox.layers.2.attention.query_key_value.weight"]!,
                                         denseWeight: reference["gpt_neox.layers.2.attention.dense.weight"]!,
                                         hiddenSize: d, numHeads: model.config.numHeads)
        let product = GradientProbe.ovGradient(wO: heads.output(head: 1), wV: heads.weight(.value, head: 1),
                                               dWO: grads.output(head: 1), dWV: grads.weight(.value, head: 1), hidden: d, headDim: heads.headDim)
        let expected = SpectralStatistics(singularValues: try Spectrum.singularValues(product, rows: d, columns: d), hiddenSize: d)
        let ov = GradientProbe.ovSite(layer: 2, head: 1)
        XCTAssertEqual(try XCTUnwrap(value(ov, MetricName.spectralNorm)), expected.spectralNorm, accuracy: 1e-4 * expected.spectralNorm)
        XCTAssertEqual(try XCTUnwrap(value(ov, MetricName.effectiveRank)), expected.effectiveRank, accuracy: 1e-3)
        // Activation gradients: resid_pre of block 0 is the embeddings' gradient.
        let residPre = reference["blocks.0.hook_resid_pre_grad"]!
        XCTAssertEqual(try XCTUnwrap(value(GradientProbe.site(activation: .residPre), MetricName.maxAbs, layer: 0)),
                       Double(residPre.map(abs).max()!), accuracy: 1e-4 * Double(residPre.map(abs).max()!))

        // The same checkpoint again: every gradient points the same way as the previous one's.
        let again = try probe.measure(model: model, step: 8, sequences: tokens, tokensPerPass: 1 << 20)
        let cosines = again.filter { $0.metric == MetricName.cosinePrevious }
        XCTAssertEqual(cosines.count, NeoXModel.parameterNames(for: model.config).count)
        for row in cosines { XCTAssertEqual(row.value, 1, accuracy: 1e-5, row.site) }
    }
}
