import Formats
import Foundation
import NeoX
import Tokenizers

/// What the evaluation commands (`lambada`, `perplexity`) load before scoring, and how they
/// describe it so a printed or JSON result can be traced back to the exact model and tokenizer.
struct EvalSetup {
    let directory: URL
    let checkpoint: Checkpoint
    let model: NeoXModel
    let tokenizerURL: URL
    let tokenizer: any TextTokenizer
    /// config.json as written on disk, for the results' provenance.
    let rawConfig: JSONValue

    /// - Parameters:
    ///   - activation: an override of the config's `hidden_act`, or nil.
    static func load(model spec: String, tokenizer: TokenizerOptions, activation: MLPActivation?,
                     allowNonFinite: Bool = false, residency: WeightResidency? = nil) throws -> EvalSetup {
        let directory = try ModelLocator.resolve(spec, modelFolders: SearchPaths.modelFolders)
        let checkpoint = try Checkpoint(directory: directory)
        let chosen = residency ?? WeightResidency.automatic(config: checkpoint.config)
        try MemoryReport.requireWeights(config: checkpoint.config, residency: chosen, unembedding: true, directory: directory)
        let model = try NeoXModel(checkpoint: checkpoint, activation: activation, allowNonFinite: allowNonFinite, residency: chosen)
        for name in model.weights.ignoredTensors { warnIgnored(name, in: directory) }
        let tokenizerURL = try tokenizer.locate(modelDirectory: directory)
        let tokenizer = try TokenizerLoader.load(tokenizerURL)
        let configURL = directory.appendingPathComponent("config.json")
        let raw = (try? JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: configURL))) ?? .null
        return EvalSetup(directory: directory, checkpoint: checkpoint, model: model, tokenizerURL: tokenizerURL,
                         tokenizer: tokenizer, rawConfig: raw)
    }

    /// One line: path, layout and the architecture facts that change results.
    var modelSummary: String {
        let c = model.config
        return "\(directory.path) [\(checkpoint.layout)] \(c.numLayers) layers, d=\(c.hiddenSize), \(c.numHeads) heads, "
            + "vocab \(c.vocabSize), context \(c.maxPositionEmbeddings), \(model.activation.rawValue)"
    }

    /// The provenance block every evaluation JSON carries.
    func provenance(command: String) -> [String: JSONValue] {
        [
            "tool": "neoxprobe",
            "version": JSONValue(NeoXProbeVersion.string),
            "command": JSONValue(command),
            "model": [
                "path": JSONValue(directory.path),
                "layout": JSONValue(checkpoint.layout.description),
                "activation": JSONValue(model.activation.rawValue),
                "config": rawConfig,
            ],
            "tokenizer": JSONValue(tokenizerURL.standardizedFileURL.path),
        ]
    }
}

enum EvalOutput {
    /// Pretty, key-sorted JSON on standard output.
    /// NaN/±inf results are written as null and named in `nonfinite_results` (and on standard
    /// error), so no consumer mistakes them for missing values or reads a bare `nan`.
    static func printJSON(_ object: [String: JSONValue]) throws {
        var object = object
        let nonFinite = JSONValue.object(object).nonFinitePaths()
        if !nonFinite.isEmpty {
            object["nonfinite_results"] = .array(nonFinite.map { .string($0) })
            warnNonFinite(nonFinite)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        FileHandle.standardOutput.write(try encoder.encode(JSONValue.object(object)))
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    /// A number the way people read it: fixed decimals for ordinary values, scientific otherwise.
    static func format(_ x: Double, digits: Int = 4) -> String {
        guard x.isFinite else { return "\(x) (NOT FINITE: the model produced NaN/inf)" }
        if x != 0 && (abs(x) >= 1e7 || abs(x) < 1e-3) { return String(format: "%.\(digits)e", x) }
        return String(format: "%.\(digits)f", x)
    }
}

/// Says on standard error which results are NaN or ±inf (they are never silently printed).
func warnNonFinite(_ names: [String]) {
    FileHandle.standardError.write(Data("warning: non-finite results (NaN or ±inf): \(names.joined(separator: ", ")); the model's arithmetic overflowed or its weights are not finite\n".utf8))
}

/// Locates a data file given on the command line (or a default), with a clear error.
func requireFile(_ path: String, what: String) throws -> String {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw CommandFailure("\(what) \(path) does not exist")
    }
    guard !isDirectory.boolValue else { throw CommandFailure("\(what) \(path) is a directory, expected a file") }
    return path
}

/// A checkpoint tensor the model does not read (the config disables it): said on standard error,
/// so a run never silently computes a different model than the file holds.
func warnIgnored(_ tensor: String, in directory: URL) {
    FileHandle.standardError.write(Data("warning: \(directory.path): tensor '\(tensor)' is not used by this config (e.g. attention_bias: false or tie_word_embeddings: true); ignored\n".utf8))
}
