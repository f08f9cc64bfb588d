// A researcher's own program on NeoXProbe's library, without `@testable`: load a checkpoint,
// plan a forward pass that captures every block's residual stream, read the activation cache the
// way TransformerLens users do, and measure outlier features and per-head OV spectra.
//
//   swift run -c release layer-outliers [MODEL_DIR] [TOKEN_IDS...]
//
// MODEL_DIR defaults to the shared pythia-mini's last checkpoint.

import Formats
import Foundation
import NeoX
import ProbeStats

let arguments = CommandLine.arguments.dropFirst()
let directory = URL(fileURLWithPath: arguments.first ?? "../shared/models/pythia-mini/step2000")
let tokens: [Int32] = arguments.count > 1 ? arguments.dropFirst().compactMap { Int32($0) } : [510, 3158, 8516, 30013, 27287, 689, 253, 22658, 4370, 15, 0, 510]

do {
    let checkpoint = try Checkpoint(directory: directory)
    let config = checkpoint.config

    // Only what the plan needs is loaded: every block, no unembedding.
    let plan = try ForwardPlan(config: config, capture: HookFilter("blocks.*.hook_resid_post"))
    let model = try NeoXModel(checkpoint: checkpoint, plan: plan)
    let cache = try model.forward(tokens: [tokens], plan: plan).activations

    print("\(directory.path): \(config.numLayers) layers, d = \(config.hiddenSize), \(tokens.count) tokens")
    for layer in 0..<config.numLayers {
        guard let residual = cache[.residPost, layer: layer] else { continue }
        var outliers = OutlierStatistics(dimension: config.hiddenSize)
        outliers.add(rows: residual.data, rowCount: tokens.count, tokenOffset: 0)
        let top = outliers.topDimensions(1).first.map { "dim \($0.dim) (\(String(format: "%.3f", $0.maxAbs)))" } ?? "-"
        print("  blocks.\(layer).hook_resid_post  max |x| \(String(format: "%.3f", outliers.maxAbs))  top feature \(top)"
              + "  kurtosis \(outliers.kurtosis.map { String(format: "%.2f", $0) } ?? "-")")
    }

    // Per-head OV circuits of the first block, from the typed per-head weight views.
    let heads = model.weights.attentionHeads(layer: 0)
    for head in 0..<heads.numHeads {
        let sigma = try Spectrum.ovSingularValues(wO: heads.output(head: head).map(Double.init),
                                                  wV: heads.weight(.value, head: head).map(Double.init),
                                                  hidden: config.hiddenSize, headDim: heads.headDim)
        let spectrum = SpectralStatistics(singularValues: sigma, hiddenSize: config.hiddenSize)
        print("  blocks.0 head \(head) W_OV effective rank \(String(format: "%.2f", spectrum.effectiveRank))")
    }
} catch {
    FileHandle.standardError.write(Data("layer-outliers: \(error)\n".utf8))
    exit(1)
}
