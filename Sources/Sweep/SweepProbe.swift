import Foundation
import NeoX
import Results

/// A measurement the sweep can make on each checkpoint; also the name of its per-checkpoint file.
public enum SweepProbe: String, Sendable, CaseIterable, Comparable {
    case outliers, cka, weights, perplexity, lambada
    case gradients
    /// Generation probes (`GenerationProbes.swift`): memorization of training rows, LAMBADA generation.
    case memorization, lambadaGeneration = "lambada_generation"
    /// Analysis probes (`AnalysisProbes.swift`): activation histograms, embedding structure, full
    /// spectra, SVD direction strings, weight distribution shape.
    case activationHistograms = "activation_histograms", embeddings, spectra, svdDirections = "svd_directions", weightShape = "weight_shape"

    /// Canonical order (files, metrics.csv, fingerprints).
    public static func < (a: SweepProbe, b: SweepProbe) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Probes that need a forward pass over the evaluation tokens.
    public var usesEvaluationTokens: Bool {
        self == .outliers || self == .cka || self == .perplexity || self == .gradients || self == .activationHistograms
    }

    /// Probes measured from the one streamed forward pass (`ActivationMeasurement`).
    var usesForwardPass: Bool { self == .outliers || self == .cka || self == .perplexity }

    public var fileName: String { rawValue + ".csv" }

    /// Parses a comma-separated list (`outliers,cka`); unknown names are an error listing the valid ones.
    public static func parse(_ list: String) throws -> [SweepProbe] {
        let valid = "valid probes: " + allCases.map(\.rawValue).joined(separator: ", ")
        var chosen: Set<SweepProbe> = []
        for item in list.split(separator: ",") {
            let name = item.trimmingCharacters(in: .whitespaces).lowercased()
            if name.isEmpty { continue }
            guard let probe = SweepProbe(rawValue: name) else {
                throw SweepError(.invalidOption, option: .probes, "unknown probe '\(name)'; \(valid)")
            }
            chosen.insert(probe)
        }
        guard !chosen.isEmpty else { throw SweepError(.invalidOption, option: .probes, "the probe list is empty; \(valid)") }
        return chosen.sorted()
    }
}

extension ActivationSite {
    /// The engine hook whose activation this site measures (exhaustive: a new site must say).
    func hook(layer: Int) -> HookPoint {
        switch self {
        case .residPre: return .residPre(layer)
        case .attnOut: return .attnOut(layer)
        case .mlpOut: return .mlpOut(layer)
        case .residPost: return .residPost(layer)
        }
    }
}
