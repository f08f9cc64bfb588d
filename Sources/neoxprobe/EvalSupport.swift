import ArgumentParser
import Evaluation
import Formats
import Foundation
import NeoX
import Report
import Results
import Sweep
import Tokenizers

/// The model options `lambada` and `perplexity` share, and how they become an `EvalSetup`.
struct EvalModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model directory or ORG/NAME[@REVISION] in the Hugging Face cache.")
    var model: String

    @Option(name: .long, help: "tokenizer.json or SentencePiece .model (default: located next to the model).")
    var tokenizer: String?

    @Option(name: .long, help: GeluChoice.help)
    var gelu: GeluChoice?

    func load() throws -> EvalSetup {
        try EvalSetup.load(model: model, tokenizer: tokenizer, activation: gelu?.activation)
    }
}

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
    static func load(model spec: String, tokenizer explicit: String?, activation: MLPActivation?) throws -> EvalSetup {
        let directory = try ModelLocator.resolve(spec, modelFolders: SearchPaths.modelFolders)
        let checkpoint = try Checkpoint(directory: directory)
        let model = try NeoXModel(checkpoint: checkpoint, activation: activation)
        let tokenizerURL = try TokenizerLoader.locate(explicit: explicit.map { URL(fileURLWithPath: $0) },
                                                      modelDirectory: directory, fallbacks: SearchPaths.tokenizers)
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

/// A JSON value that keeps booleans, integers and floats apart (Foundation's JSONSerialization
/// on Linux turns `true` into `1`), so a copied config.json stays faithful in the results.
enum JSONValue: Codable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .int(value) }
    init(floatLiteral value: Double) { self = .double(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
    /// Non-finite numbers (an empty evaluation, an overflowing perplexity) become null.
    init(_ value: Double) { self = value.isFinite ? .double(value) : .null }
    init(_ value: Int) { self = .int(value) }
    init(_ value: String) { self = .string(value) }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int.self) { self = .int(value) }
        else if let value = try? container.decode(Double.self) { self = .double(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let v): try container.encode(v)
        case .int(let v): try container.encode(v)
        case .double(let v): if v.isFinite { try container.encode(v) } else { try container.encodeNil() }
        case .string(let v): try container.encode(v)
        case .array(let v): try container.encode(v)
        case .object(let v): try container.encode(v)
        }
    }
}

enum EvalOutput {
    /// Pretty, key-sorted JSON on standard output.
    static func printJSON(_ object: [String: JSONValue]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        FileHandle.standardOutput.write(try encoder.encode(JSONValue.object(object)))
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    /// A number the way people read it: fixed decimals for ordinary values, scientific otherwise.
    static func format(_ x: Double, digits: Int = 4) -> String {
        guard x.isFinite else { return "\(x)" }
        if x != 0 && (abs(x) >= 1e7 || abs(x) < 1e-3) { return String(format: "%.\(digits)e", x) }
        return String(format: "%.\(digits)f", x)
    }

    /// Wall-clock seconds since `start`.
    static func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}

/// A bad input to an evaluation command, reported without ArgumentParser's usage text.
struct EvalInputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Locates a data file given on the command line (or a default), with a clear error.
func requireFile(_ path: String, what: String) throws -> String {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw EvalInputError("\(what) \(path) does not exist")
    }
    guard !isDirectory.boolValue else { throw EvalInputError("\(what) \(path) is a directory, expected a file") }
    return path
}
