import Formats
import Foundation
import Synchronization

/// A Hugging Face `tokenizer.json` byte-level BPE tokenizer (GPT-2, GPT-NeoX-20B / Pythia, …),
/// reproducing HF `tokenizers`' `encode(text, add_special_tokens=False)` token for token.
///
/// Pipeline, as in HF: split out non-normalized added tokens on the raw text → normalize each
/// remaining piece → split out normalized added tokens → ByteLevel pre-tokenize (GPT-2 regex) →
/// BPE each pre-token (memoized). Post-processors are not applied: like
/// `add_special_tokens=False`, no BOS/EOS is ever inserted (the 20B file's ByteLevel
/// post-processor adds nothing anyway).
public struct BPETokenizer: TextTokenizer {
    public let name: String
    public let vocabularySize: Int

    private let normalizer: Normalizer?
    private let rawAddedTokens: AddedTokenMatcher
    private let normalizedAddedTokens: AddedTokenMatcher
    private let addPrefixSpace: Bool
    private let useRegex: Bool
    private let model: BPEModel
    /// Decoded bytes of every id, stored flat: bytes of id i are `decodeBytes[decodeOffsets[i]..<decodeOffsets[i+1]]`.
    private let decodeBytes: [UInt8]
    private let decodeOffsets: [Int32]
    private let cache: SharedWordCache

    /// Loads a tokenizer.json file.
    public init(contentsOf url: URL) throws {
        let path = url.path
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadable(path: path, reason: error.localizedDescription)
        }
        try self.init(jsonData: data, name: path)
    }

    /// Builds a tokenizer from tokenizer.json bytes; `name` is used in messages and results.
    public init(jsonData data: Data, name: String) throws {
        let path = name
        let root: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw TokenizerError.malformed(path: path, reason: "top level is not a JSON object")
            }
            root = object
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw TokenizerError.malformed(path: path, reason: "invalid JSON: \(JSONParsing.describe(error, data: data, offset: 0))")
        }
        func malformed(_ reason: String) -> TokenizerError { .malformed(path: path, reason: reason) }
        func unsupported(_ feature: String) -> TokenizerError { .unsupported(path: path, feature: feature) }
        func isNull(_ value: Any?) -> Bool { value == nil || value is NSNull }

        // Model.
        guard let modelObject = root["model"] as? [String: Any] else { throw malformed("no \"model\" object") }
        let modelType = modelObject["type"] as? String ?? "BPE"  // old files omit the type for BPE
        guard modelType == "BPE" else {
            throw unsupported("model type \"\(modelType)\" (only byte-level BPE tokenizer.json is supported; use a .model file for SentencePiece)")
        }
        if let dropout = modelObject["dropout"] as? Double, dropout > 0 { throw unsupported("BPE dropout \(dropout)") }
        if let prefix = modelObject["continuing_subword_prefix"] as? String, !prefix.isEmpty {
            throw unsupported("BPE continuing_subword_prefix \"\(prefix)\"")
        }
        if let suffix = modelObject["end_of_word_suffix"] as? String, !suffix.isEmpty {
            throw unsupported("BPE end_of_word_suffix \"\(suffix)\"")
        }
        if modelObject["byte_fallback"] as? Bool == true { throw unsupported("BPE byte_fallback") }
        guard let vocabObject = modelObject["vocab"] as? [String: Any] else { throw malformed("model has no \"vocab\" object") }
        var vocab = [String: Int32]()
        vocab.reserveCapacity(vocabObject.count)
        for (token, value) in vocabObject {
            guard let id = Self.tokenID(value) else {
                throw malformed("vocab entry \"\(token)\" has id \(value), not an integer in 0..<\(Self.idLimit)")
            }
            vocab[token] = id
        }

        // Merges: "a b" strings (older files) or [a, b] pairs (newer files).
        guard let mergeList = modelObject["merges"] as? [Any] else { throw malformed("model has no \"merges\" list") }
        var merges = [UInt64: UInt64]()
        merges.reserveCapacity(mergeList.count)
        for (rank, entry) in mergeList.enumerated() {
            let left: String, right: String
            if let line = entry as? String {
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw malformed("merge \(rank) \"\(line)\" is not two space-separated tokens") }
                left = String(parts[0]); right = String(parts[1])
            } else if let pair = entry as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                left = a; right = b
            } else {
                throw malformed("merge \(rank) is neither \"a b\" nor [a, b]")
            }
            guard let leftID = vocab[left], let rightID = vocab[right] else {
                throw malformed("merge \(rank) (\(left) \(right)) uses a token missing from the vocab")
            }
            guard let mergedID = vocab[left + right] else {
                throw malformed("merge \(rank) result \"\(left + right)\" is missing from the vocab")
            }
            merges[UInt64(UInt32(leftID)) << 32 | UInt64(UInt32(rightID))] = UInt64(rank) << 32 | UInt64(UInt32(mergedID))
        }
        var unknownID: Int32? = nil
        if let unk = modelObject["unk_token"] as? String {
            guard let id = vocab[unk] else { throw malformed("unk_token \"\(unk)\" is not in the vocab") }
            unknownID = id
        }
        var byteIDs = [Int32](repeating: -1, count: 256)
        for b in 0..<256 { byteIDs[b] = vocab[String(Character(ByteLevel.characters[b]))] ?? -1 }
        var wholeWords: [[UInt8]: Int32]? = nil
        if modelObject["ignore_merges"] as? Bool == true {
            var map = [[UInt8]: Int32]()
            for (token, id) in vocab { if let bytes = ByteLevel.decode(token: token) { map[bytes] = id } }
            wholeWords = map
        }
        model = BPEModel(byteIDs: byteIDs, merges: merges, unknownID: unknownID,
                         fuseUnknown: modelObject["fuse_unk"] as? Bool ?? false, wholeWords: wholeWords)

        // Normalizer.
        let normalizer = try Normalizer.parse(root["normalizer"], path: path)
        self.normalizer = normalizer

        // Pre-tokenizer: ByteLevel, alone or as the only member of a Sequence.
        var preTokenizer = root["pre_tokenizer"] as? [String: Any]
        if preTokenizer?["type"] as? String == "Sequence" {
            let items = preTokenizer?["pretokenizers"] as? [[String: Any]] ?? []
            guard items.count == 1 else {
                throw unsupported("pre_tokenizer Sequence of \(items.map { $0["type"] as? String ?? "?" }) (only a lone ByteLevel is supported)")
            }
            preTokenizer = items[0]
        }
        guard let preTokenizer else {
            throw unsupported("missing pre_tokenizer (byte-level BPE needs the ByteLevel pre-tokenizer)")
        }
        let preType = preTokenizer["type"] as? String ?? "?"
        guard preType == "ByteLevel" else { throw unsupported("pre_tokenizer type \"\(preType)\"") }
        addPrefixSpace = preTokenizer["add_prefix_space"] as? Bool ?? true
        useRegex = preTokenizer["use_regex"] as? Bool ?? true

        // Decoder: ByteLevel (the only one that inverts the byte map).
        if let decoder = root["decoder"] as? [String: Any] {
            let type = decoder["type"] as? String ?? "?"
            guard type == "ByteLevel" else { throw unsupported("decoder type \"\(type)\"") }
        } else if !isNull(root["decoder"]) {
            throw malformed("\"decoder\" is not an object")
        } else {
            throw unsupported("missing decoder (byte-level BPE needs the ByteLevel decoder)")
        }

        // Post-processor: accepted and not applied (see the type's documentation).
        if let post = root["post_processor"] as? [String: Any] {
            let type = post["type"] as? String ?? "?"
            let known = ["ByteLevel", "TemplateProcessing", "RobertaProcessing", "BertProcessing", "Sequence"]
            guard known.contains(type) else { throw unsupported("post_processor type \"\(type)\"") }
        }

        // Added tokens.
        var added = [AddedToken]()
        for entry in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = entry["content"] as? String, let id = entry["id"].flatMap(Self.tokenID) else {
                throw malformed("added token without string \"content\" and an integer \"id\" in 0..<\(Self.idLimit)")
            }
            let special = entry["special"] as? Bool ?? false
            added.append(AddedToken(id: id, content: content, special: special,
                                    singleWord: entry["single_word"] as? Bool ?? false,
                                    lstrip: entry["lstrip"] as? Bool ?? false,
                                    rstrip: entry["rstrip"] as? Bool ?? false,
                                    normalized: entry["normalized"] as? Bool ?? !special))
        }
        rawAddedTokens = AddedTokenMatcher(added.filter { !$0.normalized }, normalizer: nil)
        normalizedAddedTokens = AddedTokenMatcher(added.filter { $0.normalized }, normalizer: normalizer)

        // Id → bytes for decoding: added tokens take precedence over the model's vocab, as in HF.
        var tokenOfID = [Int32: String]()
        for (token, id) in vocab { tokenOfID[id] = token }
        for token in added { tokenOfID[token.id] = token.content }
        let size = (tokenOfID.keys.max().map(Int.init) ?? -1) + 1   // ≤ idLimit, so the table stays bounded
        vocabularySize = size
        var bytes = [UInt8]()
        var offsets = [Int32](repeating: 0, count: size + 1)
        for id in 0..<size {
            offsets[id] = Int32(bytes.count)
            if let token = tokenOfID[Int32(id)] {
                // HF's ByteLevel decoder: tokens made only of byte stand-ins map back to bytes,
                // anything else (e.g. an added "  " token) is taken as its own UTF-8.
                bytes.append(contentsOf: ByteLevel.decode(token: token) ?? Array(token.utf8))
            }
        }
        offsets[size] = Int32(bytes.count)
        decodeBytes = bytes
        decodeOffsets = offsets
        cache = SharedWordCache()
        self.name = name
    }

    // MARK: Encoding

    /// Token ids are dense tables' indices: 2^24 (16.7M) is far above any real vocabulary
    /// (GPT-NeoX-20B: 50,277) and keeps the decode table of a hostile file bounded.
    static let idLimit = 1 << 24

    /// A JSON token id: an integer (not a boolean, not 7.5) in `0..<idLimit`.
    static func tokenID(_ value: Any) -> Int32? {
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
        let double = number.doubleValue
        guard double == double.rounded(), double >= 0, double < Double(idLimit) else { return nil }
        return Int32(double)
    }

    public func encode(_ text: String) throws -> [Int32] {
        var text = text
        return text.withUTF8 { encodeValidated($0) }
    }

    public func encode(utf8 bytes: [UInt8]) throws -> [Int32] {
        try bytes.withUnsafeBufferPointer { buffer in
            if let offset = UTF8Validation.firstInvalidOffset(buffer) {
                throw TokenizerError.invalidUTF8(input: "input text", offset: offset)
            }
            return encodeValidated(buffer)
        }
    }

    private func encodeValidated(_ buffer: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var out = [Int32]()
        guard let base = buffer.baseAddress, buffer.count > 0 else { return out }
        out.reserveCapacity(buffer.count / 3 + 16)
        let done: Bool = cache.lock.withLockIfAvailable { shared in
            encode(base, buffer.count, cache: &shared, into: &out)
            return true
        } ?? false
        if !done {
            var local = WordCache(maximumEntries: 1 << 14)
            encode(base, buffer.count, cache: &local, into: &out)
        }
        return out
    }

    private func encode(_ p: UnsafePointer<UInt8>, _ count: Int, cache: inout WordCache, into out: inout [Int32]) {
        rawAddedTokens.split(p, from: 0, to: count) { start, end, id in
            if let id { out.append(id); return }
            if let normalizer, let normalized = normalizer.normalize(p, from: start, to: end) {
                normalized.withUnsafeBufferPointer { n in
                    if let q = n.baseAddress { encodeNormalized(q, from: 0, to: n.count, cache: &cache, into: &out) }
                }
            } else {
                encodeNormalized(p, from: start, to: end, cache: &cache, into: &out)
            }
        }
    }

    private func encodeNormalized(_ p: UnsafePointer<UInt8>, from start: Int, to end: Int,
                                  cache: inout WordCache, into out: inout [Int32]) {
        normalizedAddedTokens.split(p, from: start, to: end) { start, end, id in
            if let id { out.append(id); return }
            if addPrefixSpace && p[start] != 0x20 {
                var prefixed = [UInt8](repeating: 0x20, count: end - start + 1)
                prefixed.withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: 1).update(from: p + start, count: end - start) }
                prefixed.withUnsafeBufferPointer { q in
                    preTokenize(q.baseAddress!, from: 0, to: q.count, cache: &cache, into: &out)
                }
            } else {
                preTokenize(p, from: start, to: end, cache: &cache, into: &out)
            }
        }
    }

    @inline(__always)
    private func preTokenize(_ p: UnsafePointer<UInt8>, from start: Int, to end: Int,
                             cache: inout WordCache, into out: inout [Int32]) {
        if useRegex {
            GPT2PreTokenizer.split(p, from: start, to: end) { s, e in encodeWord(p, s, e, cache: &cache, into: &out) }
        } else {
            encodeWord(p, start, end, cache: &cache, into: &out)
        }
    }

    @inline(__always)
    private func encodeWord(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int,
                            cache: inout WordCache, into out: inout [Int32]) {
        if end - start > WordCache.maximumWordLength {
            model.encodeWord(p, from: start, to: end, into: &out)
            return
        }
        let hash = WordCache.hash(p, start, end)
        if cache.lookup(p, start, end, hash: hash, into: &out) { return }
        let before = out.count
        model.encodeWord(p, from: start, to: end, into: &out)
        cache.insert(p, start, end, hash: hash, ids: out[before...])
    }

    // MARK: Decoding

    /// Ids outside the vocabulary are skipped, as HF `tokenizers` does.
    public func decode(_ ids: [Int32]) throws -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(ids.count * 4)
        decodeBytes.withUnsafeBufferPointer { source in
            decodeOffsets.withUnsafeBufferPointer { offsets in
                for id in ids where id >= 0 && Int(id) < vocabularySize {
                    let from = Int(offsets[Int(id)]), to = Int(offsets[Int(id) + 1])
                    bytes.append(contentsOf: UnsafeBufferPointer(rebasing: source[from..<to]))
                }
            }
        }
        // Like HF (`String::from_utf8_lossy`), byte sequences cut inside a character become U+FFFD.
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The process-wide word cache of one tokenizer instance, shared by its copies.
final class SharedWordCache: Sendable {
    let lock = Mutex(WordCache())
}
