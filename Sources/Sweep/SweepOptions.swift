import Formats
import Foundation
import NeoX
import ProbeStats
import Results

/// A measurement the sweep can make on each checkpoint; also the name of its per-checkpoint file.
public enum SweepProbe: String, Sendable, CaseIterable, Comparable {
    case outliers, cka, weights, perplexity, lambada

    /// Canonical order (files, metrics.csv, fingerprints).
    public static func < (a: SweepProbe, b: SweepProbe) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Probes that need a forward pass over the evaluation tokens.
    public var usesEvaluationTokens: Bool { self == .outliers || self == .cka || self == .perplexity }

    public var fileName: String { rawValue + ".csv" }

    /// Parses `--probes outliers,cka`; unknown names are an error listing the valid ones.
    public static func parse(_ list: String) throws -> [SweepProbe] {
        var chosen: Set<SweepProbe> = []
        for item in list.split(separator: ",") {
            let name = item.trimmingCharacters(in: .whitespaces).lowercased()
            if name.isEmpty { continue }
            guard let probe = SweepProbe(rawValue: name) else {
                throw SweepError(.invalidOption, "unknown probe '\(name)' in --probes; valid probes: \(allCases.map(\.rawValue).joined(separator: ", "))")
            }
            chosen.insert(probe)
        }
        guard !chosen.isEmpty else { throw SweepError(.invalidOption, "--probes is empty; valid probes: \(allCases.map(\.rawValue).joined(separator: ", "))") }
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

/// Everything a sweep is asked to do.
public struct SweepOptions: Sendable {
    /// Suite directory, `models--ORG--NAME` folder, or `ORG/NAME` in the Hugging Face cache.
    public var suite: String
    /// `all` or a comma-separated list of steps.
    public var steps: String = "all"
    /// Evaluation tokens (needed by outliers, cka, perplexity).
    public var data: SweepDataSpec?
    public var probes: [SweepProbe]
    public var output: URL
    /// CKA reference (default: the last selected step).
    public var referenceStep: Int?
    /// Weight-distance and histogram reference (default: step 0 if the suite has it, else the first selected step).
    public var weightsReferenceStep: Int?
    /// Rows per minibatch of the debiased CKA estimator (nil: plain linear CKA only).
    public var ckaMinibatch: Int?
    public var lambadaData: String = "../shared/data/lambada/lambada_test.jsonl"
    public var lambadaLimit: Int?
    /// MLP activation override (nil: the config's `hidden_act`).
    public var activation: MLPActivation?
    /// Tokenizer file (nil: located next to the first checkpoint or in the usual places).
    public var tokenizer: String?
    /// Where to look for a tokenizer when the checkpoints carry none (the caller's places, in order).
    public var tokenizerFallbacks: [URL] = []
    public var topK: Int = 8
    /// Tokens per forward pass (bounds activation memory; rounded down to whole sequences).
    public var tokensPerBatch: Int = 8192
    /// Written into run.json.
    public var toolVersion: String = "unknown"
    /// Redraw a progress bar (nil: when standard error is a terminal).
    public var progressBar: Bool? = nil
    /// Print progress and warnings to standard error.
    public var verbose: Bool = true

    public init(suite: String, data: SweepDataSpec?, probes: [SweepProbe], output: URL) {
        self.suite = suite
        self.data = data
        self.probes = probes
        self.output = output
    }
}
