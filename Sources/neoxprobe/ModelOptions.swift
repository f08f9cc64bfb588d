import ArgumentParser
import Formats
import Foundation
import NeoX
import Tokenizers

/// `--tokenizer`, shared by every command that turns text into ids or back.
struct TokenizerOptions: ParsableArguments {
    @Option(name: .long, help: "tokenizer.json or SentencePiece .model (default: next to the model, else tokenizer/20B_tokenizer.json or ../shared/tokenizer/20B_tokenizer.json).")
    var tokenizer: String?

    /// The tokenizer file: the one given, else the first found in the usual places.
    func locate(modelDirectory: URL?) throws -> URL {
        do {
            return try TokenizerLoader.locate(explicit: tokenizer.map { URL(fileURLWithPath: $0) }, modelDirectory: modelDirectory,
                                              fallbacks: SearchPaths.tokenizers)
        } catch TokenizerError.notFound(let searched) where tokenizer == nil {
            throw CommandFailure("no tokenizer found; looked in: \(searched.joined(separator: ", ")). "
                + "Pass --tokenizer FILE (a tokenizer.json or SentencePiece .model), or put one in a checkout's tokenizer/ (make tokenizer) or install one (make install)")
        }
    }
}

/// `--gelu` and `--allow-nonfinite`, shared by every command that runs a model.
struct ActivationOptions: ParsableArguments {
    @Option(name: .long, help: GeluChoice.help)
    var gelu: GeluChoice?

    @Flag(name: .long, help: "Load weights that hold NaN or ±inf (refused by default: every result would be NaN).")
    var allowNonfinite = false

    @Option(name: .long, help: "How block weights are held: resident (all widened to fp32 at load), streamed (kept in the checkpoint's dtype, each block widened just before it runs), or auto (resident up to 2 GiB of fp32 blocks).")
    var weights: WeightChoice = .auto

    /// The override of the config's `hidden_act`, or nil.
    var activation: MLPActivation? { gelu?.activation }

    /// The residency asked for (nil: automatic by size).
    var residency: WeightResidency? { weights.residency }
}

/// `--weights auto|resident|streamed`.
enum WeightChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, resident, streamed

    var residency: WeightResidency? {
        switch self {
        case .auto: return nil
        case .resident: return .resident
        case .streamed: return .streamed
        }
    }
}

/// The model a command runs: `--model` with its `--tokenizer` and `--gelu`. A sweep names a suite
/// instead of one model and shares only the last two groups.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model directory or ORG/NAME[@REVISION] in the Hugging Face cache.")
    var model: String

    @OptionGroup var tokenizerOptions: TokenizerOptions
    @OptionGroup var activationOptions: ActivationOptions

    var activation: MLPActivation? { activationOptions.activation }
    var allowNonFinite: Bool { activationOptions.allowNonfinite }
    var residency: WeightResidency? { activationOptions.residency }

    /// Loads what the evaluation commands need: model, tokenizer, provenance.
    func loadEvalSetup() throws -> EvalSetup {
        try EvalSetup.load(model: model, tokenizer: tokenizerOptions, activation: activation, allowNonFinite: allowNonFinite,
                           residency: residency)
    }
}
