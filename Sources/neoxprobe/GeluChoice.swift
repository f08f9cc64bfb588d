import ArgumentParser
import Formats
import NeoX

/// `--gelu erf|tanh`, shared by every command that runs a model: HF evaluates Pythia with exact
/// erf-GELU, GPT-NeoX trained it with the tanh approximation, and researchers may want either.
/// Parsing the choice here means no command re-validates the string.
enum GeluChoice: String, ExpressibleByArgument, CaseIterable {
    case erf, tanh

    var activation: MLPActivation { self == .tanh ? .geluTanh : .geluErf }

    static let help: ArgumentHelp =
        "Override the MLP activation: erf (exact GELU, as HF's 'gelu') or tanh (the approximation GPT-NeoX trained with). Default: config.json's hidden_act."
}
