import Formats
import Foundation

/// One measured number in long form: the unit every probe emits and `metrics.csv` stores.
///
/// Long form (one row per number) keeps the file schema fixed while probes come and go, and lets
/// the report (or pandas) pivot however it likes.
///
/// - `step`: training step of the checkpoint measured.
/// - `layer`: transformer layer index, or `nil` for model-wide rows (embeddings, final norm,
///   unembedding, evaluations).
/// - `site`: where it was measured: an activation site (`resid_post`, `attn_out`, `mlp_out`, …),
///   `weights:<HF tensor name>`, `weights:<…>.attention.w_ov.head<h>`, or an evaluation (`lambada`).
/// - `metric`: a stable snake_case name; see `MetricName`.
public struct MetricRow: Sendable, Equatable, Hashable {
    public var step: Int
    public var layer: Int?
    public var site: String
    public var metric: String
    public var value: Double

    public init(step: Int, layer: Int?, site: String, metric: String, value: Double) {
        self.step = step
        self.layer = layer
        self.site = site
        self.metric = metric
        self.value = value
    }
}

/// The metric names the probes emit. They are part of the file format: never rename one.
///
/// Lists are flattened into numbered rows, 1-based, best first: the k-th outlier feature of an
/// activation site is `top<k>_dim` (its dimension index) and `top<k>_max_abs` (that dimension's
/// max |x|). Histogram bins are `hist_bin_<i>` with `i` zero-padded to the width of the bin count.
public enum MetricName {
    // Activation outliers (`OutlierStatistics`).
    public static let maxAbs = "max_abs"
    public static let argmaxDim = "argmax_dim"
    public static let argmaxToken = "argmax_token"
    /// `argmax_token` as (sequence, position) of the evaluation batch: `argmax_token` is the flat
    /// index `sequence · seq_len + position`.
    public static let argmaxSequence = "argmax_sequence"
    public static let argmaxPosition = "argmax_position"
    public static let meanNorm = "mean_norm"
    public static let kurtosis = "kurtosis"
    public static let maxDimKurtosis = "max_dim_kurtosis"
    public static let maxDimKurtosisDim = "max_dim_kurtosis_dim"
    public static let tokenCount = "token_count"
    public static let nonFiniteCount = "nonfinite_count"
    public static func topDim(_ rank: Int) -> String { "top\(rank)_dim" }
    public static func topMaxAbs(_ rank: Int) -> String { "top\(rank)_max_abs" }

    // Representation similarity (`CKAAccumulator`).
    public static let cka = "cka"
    public static let ckaDebiased = "cka_debiased"
    public static let ckaTokens = "cka_tokens"
    public static let ckaDebiasedTokens = "cka_debiased_tokens"

    // Weights (`WeightStatistics`, `SpectralStatistics`, `WeightProbe`).
    public static let frobeniusNorm = "frobenius_norm"
    public static let mean = "mean"
    public static let std = "std"
    public static let distanceFromReference = "distance_from_reference"
    public static let histRange = "hist_range"
    public static let histUnderflow = "hist_underflow"
    public static let histOverflow = "hist_overflow"
    public static func histBin(_ index: Int, of count: Int) -> String {
        let width = String(max(count - 1, 0)).count
        let digits = String(index)
        return "hist_bin_" + String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    public static let effectiveRank = "effective_rank"
    public static let per = "per"
    public static let spectralNorm = "spectral_norm"
    public static let msd = "msd"

    // Evaluations (written by the evaluation commands; listed so the report can find them).
    public static let perplexity = "perplexity"
    public static let nll = "nll"
    public static let acc = "acc"

    // Gradients (`GradientProbe`): the loss they are of, and agreement with the previous checkpoint's.
    public static let loss = "loss"
    public static let cosinePrevious = "cosine_previous"
}

/// Reads and writes `metrics.csv`: header `step,layer,site,metric,value`, one `MetricRow` a line.
///
/// Numbers are written so they read back bit-for-bit: integral values below 2^53 as integers
/// (`3`, not `3.0`, so indices look like indices), everything else as Swift's shortest
/// round-trip decimal (`0.1`, `1e-05`), and `nan`, `inf`, `-inf` spelled the way Python's
/// `float()` and pandas accept. Text fields are quoted (RFC 4180) only when they contain a comma,
/// quote or newline. The layer column is empty for model-wide rows.
public enum MetricsCSV {
    public static let header = "step,layer,site,metric,value"

    /// Round-trippable text for a double (see the type's documentation).
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 {
            if value == 0 { return value.sign == .minus ? "-0" : "0" }
            return String(Int64(value))
        }
        return value.description
    }

    /// Parses what `format` writes (and any decimal or exponent form).
    public static func parse(_ text: Substring) -> Double? {
        switch text.lowercased() {
        case "nan": return .nan
        case "inf", "+inf", "infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default: return Double(text)
        }
    }

    public static func encode(_ rows: [MetricRow]) -> String {
        var text = header + "\n"
        text.reserveCapacity(rows.count * 48)
        for row in rows {
            text += String(row.step)
            text += ","
            if let layer = row.layer { text += String(layer) }
            text += ","
            text += quoted(row.site)
            text += ","
            text += quoted(row.metric)
            text += ","
            text += format(row.value)
            text += "\n"
        }
        return text
    }

    /// Writes all rows atomically (see `AtomicFile`).
    public static func write(_ rows: [MetricRow], to url: URL) throws {
        try AtomicFile.write(encode(rows), to: url)
    }

    public static func read(contentsOf url: URL) throws -> [MetricRow] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ResultsError(.io, "cannot read metrics: \(error.localizedDescription)", path: url.path)
        }
        do { return try decode(text) } catch var error as ResultsError {
            error.path = url.path
            throw error
        }
    }

    public static func decode(_ text: String) throws -> [MetricRow] {
        let records = try splitRecords(text)
        guard let first = records.first else { throw ResultsError(.malformed, "empty metrics file (no header)") }
        guard first.map({ $0.lowercased() }) == header.split(separator: ",").map(String.init) else {
            throw ResultsError(.malformed, "unexpected header '\(first.joined(separator: ","))', expected '\(header)'")
        }
        var rows: [MetricRow] = []
        rows.reserveCapacity(records.count - 1)
        for (index, fields) in records.dropFirst().enumerated() {
            let line = index + 2
            if fields.count == 1 && fields[0].isEmpty { continue }
            guard fields.count == 5 else { throw ResultsError(.malformed, "expected 5 fields, found \(fields.count)", line: line) }
            guard let step = Int(fields[0]) else { throw ResultsError(.malformed, "step '\(fields[0])' is not an integer", line: line) }
            var layer: Int? = nil
            if !fields[1].isEmpty {
                guard let parsed = Int(fields[1]) else { throw ResultsError(.malformed, "layer '\(fields[1])' is not an integer", line: line) }
                layer = parsed
            }
            guard let value = parse(Substring(fields[4])) else { throw ResultsError(.malformed, "value '\(fields[4])' is not a number", line: line) }
            rows.append(MetricRow(step: step, layer: layer, site: fields[2], metric: fields[3], value: value))
        }
        return rows
    }

    static func quoted(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// RFC 4180 records: fields split on commas, quotes escape commas/newlines, `""` is a quote.
    static func splitRecords(_ text: String) throws -> [[String]] {
        var records: [[String]] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let scalar = pending { pending = nil; return scalar }
            return iterator.next()
        }
        var sawAnything = false
        while let scalar = next() {
            sawAnything = true
            if inQuotes {
                if scalar == "\"" {
                    if let following = next() {
                        if following == "\"" { field.unicodeScalars.append("\"") } else { inQuotes = false; pending = following }
                    } else { inQuotes = false }
                } else {
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"" where field.isEmpty: inQuotes = true
            case ",": fields.append(field); field = ""
            case "\r": continue
            case "\n":
                fields.append(field); field = ""
                records.append(fields); fields = []
            default: field.unicodeScalars.append(scalar)
            }
        }
        if inQuotes { throw ResultsError(.malformed, "unterminated quoted field") }
        if sawAnything && (!field.isEmpty || !fields.isEmpty) {
            fields.append(field)
            records.append(fields)
        }
        return records
    }
}

/// Metric and site names the sweep adds to the long-form files (see `MetricName` for the rest).
public enum SweepNames {
    /// Site of model-wide facts about a checkpoint.
    public static let checkpointSite = "checkpoint"
    /// `identical_to_step`: this checkpoint's tensors are bit-identical to the earlier step given
    /// as the value (the first such step).
    public static let identicalToStep = "identical_to_step"
    /// Site of the perplexity on the sweep's own evaluation tokens.
    public static let evaluationTokensSite = "eval_tokens"
    /// Site of LAMBADA results.
    public static let lambadaSite = "lambada"
    /// Examples evaluated (LAMBADA).
    public static let exampleCount = "example_count"
}

/// The per-layer activation sites the sweep measures, in production order.
public enum ActivationSite: String, Sendable, CaseIterable {
    case residPre = "resid_pre"
    case attnOut = "attn_out"
    case mlpOut = "mlp_out"
    case residPost = "resid_post"
}
