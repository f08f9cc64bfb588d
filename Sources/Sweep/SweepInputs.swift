import Corpus
import Evaluation
import Foundation
import Tokenizers

/// What every checkpoint of a sweep is measured on, prepared once: the tokenizer (when text must
/// be tokenized), the evaluation tokens and their hash, and the encoded LAMBADA requests.
struct SweepInputs {
    /// LAMBADA examples, encoded as lm-evaluation-harness does.
    struct Lambada {
        /// The data file, absolute.
        let path: String
        let requests: [LambadaRequest]
    }

    /// Some selected probe runs the evaluation tokens forward (outliers, cka, perplexity).
    let usesEvaluationTokens: Bool
    let tokenizerURL: URL?
    let tokenizer: (any TextTokenizer)?
    /// Equal-length sequences; empty when no probe uses them.
    let sequences: [[Int32]]
    let tokensHash: String
    /// Present exactly when the lambada probe is selected.
    let lambada: Lambada?
    /// Present exactly when the lambada_generation probe is selected (its own example limit).
    let lambadaGeneration: Lambada?
    /// (row index, first prefix + continuation tokens) when the memorization probe is selected.
    let memorizationRows: [(index: Int, tokens: [Int32])]
    let memorizationHash: String

    var tokenCount: Int { sequences.count * (sequences.first?.count ?? 0) }

    init(options: SweepOptions, firstCheckpoint: SweepCheckpoint, contextLimit: Int) throws {
        let probes = options.probes
        usesEvaluationTokens = probes.contains { $0.usesEvaluationTokens }
        if usesEvaluationTokens && options.data == nil {
            let names = probes.filter(\.usesEvaluationTokens).map(\.rawValue).joined(separator: ",")
            throw SweepError(.invalidOption, option: .data, "probes \(names) need evaluation tokens, and no evaluation data was given")
        }
        if (usesEvaluationTokens && options.data?.needsTokenizer == true) || probes.contains(.lambada) || probes.contains(.lambadaGeneration)
            || probes.contains(.svdDirections) {
            let url = try TokenizerLoader.locate(explicit: options.tokenizer.map { URL(fileURLWithPath: $0) },
                                                 modelDirectory: firstCheckpoint.directory,
                                                 fallbacks: options.tokenizerFallbacks).standardizedFileURL
            tokenizerURL = url
            tokenizer = try TokenizerLoader.load(url)
        } else {
            tokenizerURL = nil
            tokenizer = nil
        }
        if usesEvaluationTokens, let data = options.data {
            sequences = try data.load(tokenizer: tokenizer, contextLimit: contextLimit)
        } else {
            sequences = []
        }
        tokensHash = ContentHasher.digest(of: sequences)
        if probes.contains(.lambada), let tokenizer, let file = options.lambadaData {
            lambada = try Self.lambada(file: file, limit: options.lambadaLimit, tokenizer: tokenizer)
        } else {
            lambada = nil
        }
        if probes.contains(.lambadaGeneration), let tokenizer, let file = options.lambadaData {
            lambadaGeneration = try Self.lambada(file: file, limit: options.lambadaGenerationLimit ?? 100, tokenizer: tokenizer)
        } else {
            lambadaGeneration = nil
        }
        if probes.contains(.memorization), let data = options.data {
            memorizationRows = try Self.memorizationRows(data, length: options.memorizationPrefix + options.memorizationContinuation)
        } else {
            memorizationRows = []
        }
        memorizationHash = ContentHasher.digest(of: memorizationRows.map(\.tokens))
    }

    /// Reads the first `limit` LAMBADA examples of `file` and encodes them.
    private static func lambada(file: String, limit: Int?, tokenizer: any TextTokenizer) throws -> Lambada {
        let path = URL(fileURLWithPath: file).standardizedFileURL.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw SweepError(.notFound, option: .lambadaData, "LAMBADA data \(path) does not exist")
        }
        let examples = Array(try LambadaDataset.load(path: path).prefix(limit ?? Int.max))
        guard !examples.isEmpty else { throw SweepError(.invalidData, option: .lambadaData, "LAMBADA data \(path) has no examples") }
        let requests = try LambadaRequest.encode(examples, tokenizer: tokenizer, endOfText: 0)
        return Lambada(path: path, requests: requests)
    }
}
