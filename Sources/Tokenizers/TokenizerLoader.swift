import Foundation

/// Finds and opens tokenizer files, so every command resolves "the model's tokenizer" the same way.
public enum TokenizerLoader {
    /// Loads tokenizer.json (BPE) or a .model (SentencePiece) by file extension/content.
    /// `.json` → ``BPETokenizer``; `.model` → ``SentencePieceTokenizer``; otherwise a file whose
    /// first non-blank byte is `{` is taken as JSON and anything else as a SentencePiece model.
    public static func load(_ url: URL) throws -> any TextTokenizer {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError.unreadable(path: path, reason: "no such file")
        }
        if isDirectory.boolValue {
            throw TokenizerError.unreadable(path: path, reason: "is a directory (pass tokenizer.json or a .model file)")
        }
        switch url.pathExtension.lowercased() {
        case "json": return try BPETokenizer(contentsOf: url)
        case "model": return try SentencePieceTokenizer(contentsOf: url)
        default:
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw TokenizerError.unreadable(path: path, reason: "cannot open")
            }
            let head = (try? handle.read(upToCount: 64)) ?? Data()
            try? handle.close()
            if head.first(where: { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) }) == UInt8(ascii: "{") {
                return try BPETokenizer(contentsOf: url)
            }
            return try SentencePieceTokenizer(contentsOf: url)
        }
    }

    /// Finds a model's tokenizer: explicit path if given; else tokenizer.json / *.model next to the
    /// weights (modelDirectory); else the first of `fallbacks` that exists (the caller's own
    /// places: the library assumes no folder layout). Clear error listing where it looked.
    public static func locate(explicit: URL?, modelDirectory: URL?, fallbacks: [URL] = []) throws -> URL {
        let files = FileManager.default
        func isFile(_ url: URL) -> Bool {
            var isDirectory: ObjCBool = false
            return files.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        if let explicit {
            guard isFile(explicit) else { throw TokenizerError.notFound(searched: ["\(explicit.path) (given explicitly; no such file)"]) }
            return explicit
        }
        var searched: [String] = []
        if let modelDirectory {
            let json = modelDirectory.appendingPathComponent("tokenizer.json")
            if isFile(json) { return json }
            searched.append(json.path)
            // Prefer the conventional name, then any other .model file, in a stable order.
            let preferred = modelDirectory.appendingPathComponent("tokenizer.model")
            if isFile(preferred) { return preferred }
            let models = ((try? files.contentsOfDirectory(atPath: modelDirectory.path)) ?? [])
                .filter { $0.hasSuffix(".model") }.sorted()
            if let first = models.first { return modelDirectory.appendingPathComponent(first) }
            searched.append(modelDirectory.appendingPathComponent("*.model").path)
        }
        for candidate in fallbacks.map(\.standardizedFileURL) {
            if isFile(candidate) { return candidate }
            searched.append(candidate.path)
        }
        throw TokenizerError.notFound(searched: searched)
    }
}
