import Formats
import Foundation

/// Metric names of the analysis probes (`activation_histograms`, `embeddings`, `spectra`,
/// `svd_directions`, `weight_shape`). Part of the file format: never rename one.
extension MetricName {
    // `embeddings`: per-token L2 norms of embed_in / embed_out, and the first tokens' correlations.
    public static let tokenNormMean = "token_norm_mean"
    public static let tokenNormStd = "token_norm_std"
    public static let tokenNormMin = "token_norm_min"
    public static let tokenNormP10 = "token_norm_p10"
    public static let tokenNormP50 = "token_norm_p50"
    public static let tokenNormP90 = "token_norm_p90"
    public static let tokenNormMax = "token_norm_max"
    public static let correlationMeanOffDiagonal = "correlation_mean_offdiag"
    public static let correlationTokens = "correlation_tokens"

    // `spectra`: per matrix (the full spectrum is in steps/stepNNNNNN/singular_values.csv).
    public static let singularValueCount = "sv_count"
    public static let stableRank = "stable_rank"

    // `svd_directions`: agreement of direction k's token ends with the final checkpoint's.
    public static func overlapFinal(direction k: Int) -> String { "overlap_final_dir\(k)" }
    public static let overlapFinalMean = "overlap_final_mean"

    // `weight_shape`.
    public static let gaussianLogLikelihood = "gaussian_loglik"
    public static let logisticLogLikelihood = "logistic_loglik"
    public static let logisticMinusGaussian = "logistic_minus_gaussian_loglik"
    public static let logisticFitsBetter = "logistic_better"
    public static let logisticLocation = "logistic_loc"
    public static let logisticScale = "logistic_scale"
    /// QQ rows at probability index i of the fixed list: `qq_NN_p`, `qq_NN_empirical`, `qq_NN_gaussian`, `qq_NN_logistic`.
    public static func qq(_ index: Int, _ what: String) -> String { String(format: "qq_%02d_", index) + what }
}

extension SweepNames {
    /// Sites of the `embeddings` probe.
    public static let embeddingSite = "embedding:embed_in"
    public static let unembeddingSite = "embedding:embed_out"
    /// Per-checkpoint files the analysis probes write next to their `<probe>.csv`.
    public static let spectraFile = "singular_values.csv"
    public static let embeddingCorrelationFile = "embedding_correlation.csv"
    public static let svdDirectionsFile = "svd_directions.json"
    /// Site prefix of a `spectra` matrix (`spectrum:gpt_neox.layers.3.attention.w_qk.head1`) and of a
    /// `svd_directions` matrix (`svd:…mlp.dense_4h_to_h`, `svd:…attention.w_ov.head0`).
    public static let spectrumSitePrefix = "spectrum:"
    public static let svdSitePrefix = "svd:"
}

/// The full singular-value spectra of one checkpoint: `layer,matrix,index,singular_value` (index
/// 0 = largest), matrix = the HF tensor name without `.weight`
/// (`gpt_neox.layers.0.attention.query_key_value`) or a per-head circuit
/// (`gpt_neox.layers.0.attention.w_ov.head1`, `…w_qk.head1`).
public struct SpectrumTable: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var layer: Int
        public var matrix: String
        public var values: [Double]

        public init(layer: Int, matrix: String, values: [Double]) {
            self.layer = layer
            self.matrix = matrix
            self.values = values
        }
    }

    public static let header = "layer,matrix,index,singular_value"
    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    public func encode() -> String {
        var text = Self.header + "\n"
        for entry in entries {
            for (index, value) in entry.values.enumerated() {
                text += "\(entry.layer),\(MetricsCSV.quoted(entry.matrix)),\(index),\(MetricsCSV.format(value))\n"
            }
        }
        return text
    }

    public static func decode(_ text: String, path: String? = nil) throws -> SpectrumTable {
        let records = try MetricsCSV.splitRecords(text)
        guard records.first?.joined(separator: ",") == header else {
            throw ResultsError(.malformed, "expected the header '\(header)'", path: path, line: 1)
        }
        var entries: [Entry] = []
        for (offset, fields) in records.dropFirst().enumerated() where !(fields.count == 1 && fields[0].isEmpty) {
            guard fields.count == 4, let layer = Int(fields[0]), let index = Int(fields[2]), let value = MetricsCSV.parse(Substring(fields[3])) else {
                throw ResultsError(.malformed, "expected layer,matrix,index,singular_value", path: path, line: offset + 2)
            }
            if let last = entries.last, last.layer == layer, last.matrix == fields[1], index == last.values.count {
                entries[entries.count - 1].values.append(value)
            } else {
                guard index == 0 else { throw ResultsError(.malformed, "singular value index \(index) out of order", path: path, line: offset + 2) }
                entries.append(Entry(layer: layer, matrix: fields[1], values: [value]))
            }
        }
        return SpectrumTable(entries: entries)
    }
}

/// The correlation matrix of the first N token embeddings of one checkpoint: a square CSV
/// (header `token,0,1,…,N−1`, then one row per token: its id and N correlations, 7 significant
/// digits: the float32 embeddings carry no more).
public struct CorrelationMatrix: Sendable, Equatable {
    public var count: Int
    /// Row-major count × count.
    public var values: [Double]

    public init(count: Int, values: [Double]) {
        precondition(values.count == count * count, "a correlation matrix is square")
        self.count = count
        self.values = values
    }

    public func encode() -> String {
        var text = "token," + (0..<count).map(String.init).joined(separator: ",") + "\n"
        text.reserveCapacity(count * count * 11)
        for i in 0..<count {
            text += String(i)
            for j in 0..<count {
                let value = values[i * count + j]
                text += "," + (value.isFinite ? String(format: "%.7g", value) : MetricsCSV.format(value))
            }
            text += "\n"
        }
        return text
    }

    public static func decode(_ text: String, path: String? = nil) throws -> CorrelationMatrix {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard let header = lines.first, header.hasPrefix("token") else {
            throw ResultsError(.malformed, "expected a header 'token,0,1,…'", path: path, line: 1)
        }
        let count = header.split(separator: ",").count - 1
        guard lines.count == count + 1 else {
            throw ResultsError(.malformed, "a \(count)-token correlation matrix needs \(count) rows, found \(lines.count - 1)", path: path)
        }
        var values: [Double] = []
        values.reserveCapacity(count * count)
        for (i, line) in lines.dropFirst().enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == count + 1 else { throw ResultsError(.malformed, "expected \(count + 1) fields", path: path, line: i + 2) }
            for field in fields.dropFirst() {
                guard let value = MetricsCSV.parse(field) else { throw ResultsError(.malformed, "'\(field)' is not a number", path: path, line: i + 2) }
                values.append(value)
            }
        }
        return CorrelationMatrix(count: count, values: values)
    }
}

/// The `svd_directions` file of one checkpoint: for each matrix and direction, its singular value,
/// the tokens at both ends of W_U·u (ids and decoded strings) and the overlap with the final
/// checkpoint's same direction.
public struct SVDDirectionFile: Sendable, Equatable, Codable {
    public struct Direction: Sendable, Equatable, Codable {
        public var layer: Int
        /// `gpt_neox.layers.L.mlp.dense_4h_to_h` or `gpt_neox.layers.L.attention.w_ov.headH`.
        public var matrix: String
        /// 1-based, largest singular value first.
        public var direction: Int
        public var singularValue: Double
        public var topIds: [Int]
        public var topTokens: [String]
        public var bottomIds: [Int]
        public var bottomTokens: [String]
        /// Nil when the final checkpoint has no such matrix.
        public var overlapFinal: Double?

        public init(layer: Int, matrix: String, direction: Int, singularValue: Double, topIds: [Int], topTokens: [String],
                    bottomIds: [Int], bottomTokens: [String], overlapFinal: Double?) {
            self.layer = layer
            self.matrix = matrix
            self.direction = direction
            self.singularValue = singularValue
            self.topIds = topIds
            self.topTokens = topTokens
            self.bottomIds = bottomIds
            self.bottomTokens = bottomTokens
            self.overlapFinal = overlapFinal
        }

        enum CodingKeys: String, CodingKey {
            case layer, matrix, direction
            case singularValue = "singular_value"
            case topIds = "top_ids", topTokens = "top_tokens", bottomIds = "bottom_ids", bottomTokens = "bottom_tokens"
            case overlapFinal = "overlap_final"
        }
    }

    public var step: Int
    public var finalStep: Int
    public var directions: [Direction]

    public init(step: Int, finalStep: Int, directions: [Direction]) {
        self.step = step
        self.finalStep = finalStep
        self.directions = directions
    }

    enum CodingKeys: String, CodingKey {
        case step
        case finalStep = "final_step"
        case directions
    }

    public func encode() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data, path: String? = nil) throws -> SVDDirectionFile {
        do { return try JSONDecoder().decode(SVDDirectionFile.self, from: data) } catch {
            throw ResultsError(.malformed, "not an svd_directions file: \(error)", path: path)
        }
    }
}

/// The per-checkpoint analysis files of a results directory, by step (what the report draws).
public struct AnalysisFiles: Sendable, Equatable {
    public var spectra: [Int: SpectrumTable] = [:]
    public var correlations: [Int: CorrelationMatrix] = [:]
    public var directions: [Int: SVDDirectionFile] = [:]

    public init() {}

    public var isEmpty: Bool { spectra.isEmpty && correlations.isEmpty && directions.isEmpty }

    /// Reads every `steps/stepN/` folder's files (absent files are skipped; a malformed one is an error).
    public static func read(results: URL) throws -> AnalysisFiles {
        var files = AnalysisFiles()
        let steps = results.appendingPathComponent("steps")
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: steps.path)) ?? []
        for folder in folders where folder.hasPrefix("step") {
            guard let step = Int(folder.dropFirst(4)) else { continue }
            let directory = steps.appendingPathComponent(folder)
            func text(_ name: String) throws -> (String, String)? {
                let url = directory.appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: url.path) else { return nil }
                do { return (try String(contentsOf: url, encoding: .utf8), url.path) } catch {
                    throw ResultsError(.io, "cannot read: \(error.localizedDescription)", path: url.path)
                }
            }
            if let (body, path) = try text(SweepNames.spectraFile) { files.spectra[step] = try SpectrumTable.decode(body, path: path) }
            if let (body, path) = try text(SweepNames.embeddingCorrelationFile) {
                files.correlations[step] = try CorrelationMatrix.decode(body, path: path)
            }
            if let (body, path) = try text(SweepNames.svdDirectionsFile) {
                files.directions[step] = try SVDDirectionFile.decode(Data(body.utf8), path: path)
            }
        }
        return files
    }
}
