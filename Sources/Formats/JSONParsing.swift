import Foundation

/// `JSONSerialization` with messages a person can act on. Foundation's own error reads "The data
/// is not in the correct format" for every problem; its debug description says where and why
/// ("Invalid value around character 5", "Unexpected end of file"), so that is what we report,
/// with the input's length so a truncated file is recognisable.
public enum JSONParsing {
    /// Parses `data` (the `what` of `file`, e.g. "safetensors header") or throws `.malformed`.
    /// `offset` is where `data` starts in the file, so positions are given in file bytes.
    public static func object(_ data: Data, what: String, file: URL, offset: Int = 0) throws -> Any {
        do {
            return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw FormatError(.malformed, "malformed \(what): \(describe(error, data: data, offset: offset))", file: file)
        }
    }

    /// "invalid JSON value at byte 13 (the header is bytes 8..<120)" and the like.
    public static func describe(_ error: Error, data: Data, offset: Int) -> String {
        let span = offset == 0 ? "\(data.count) bytes" : "bytes \(offset)..<\(offset + data.count) of the file"
        if data.isEmpty { return "empty (no JSON at all)" }
        let debug = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? ""
        if let range = debug.range(of: #"character \d+"#, options: .regularExpression),
           let character = Int(debug[range].dropFirst("character ".count)) {
            let reason = debug.lowercased().contains("invalid value") ? "invalid JSON value" : debug.trimmingCharacters(in: .punctuationCharacters).lowercased()
            return "\(reason) at byte \(offset + character) (\(span))"
        }
        if debug.lowercased().contains("end of file") {
            return "the JSON ends before it is complete (\(span)): truncated?"
        }
        if !debug.isEmpty { return "\(debug.trimmingCharacters(in: .punctuationCharacters)) (\(span))" }
        return "not valid JSON (\(span))"
    }
}
