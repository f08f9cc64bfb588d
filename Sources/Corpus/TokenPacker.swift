/// Packs tokenized documents into fixed-length model inputs, the way Pythia's training data was built.
///
/// Convention (GPT-NeoX `preprocess_data.py --append-eod`, Megatron packing):
/// - each document contributes its tokens followed by one end-of-document token (EOD, id 0 for the
///   GPT-NeoX-20B tokenizer), so windows look like `… doc₁ EOD doc₂ EOD …` and documents freely
///   span window boundaries;
/// - documents that tokenize to nothing are skipped entirely (no lone EOD);
/// - windows are consecutive and non-overlapping (window k is stream tokens `k*T ..< (k+1)*T`),
///   matching the 2049-token rows of Pythia's pre-shuffled Pile (for a model with context 2048,
///   pack with `windowLength` 2049: inputs are the first 2048, targets the row shifted by one);
/// - the final, partial window is dropped by default (as Megatron does); `keepsPartialWindow`
///   returns it shorter than `windowLength` instead (never padded).
///
/// The packer only holds the tokens not yet emitted, so a caller can feed it one document at a time
/// and stop as soon as it has the windows it wants.
public struct TokenPacker: Sendable {
    public let windowLength: Int
    public let endOfDocument: Int32
    public let keepsPartialWindow: Bool

    private var pending: [Int32] = []
    private var start = 0

    public init(windowLength: Int, endOfDocument: Int32 = 0, keepsPartialWindow: Bool = false) {
        precondition(windowLength > 0, "windowLength must be positive")
        self.windowLength = windowLength
        self.endOfDocument = endOfDocument
        self.keepsPartialWindow = keepsPartialWindow
    }

    /// Tokens appended but not yet returned in a window.
    public var bufferedTokenCount: Int { pending.count - start }

    /// Whether a full window is ready.
    public var hasFullWindow: Bool { bufferedTokenCount >= windowLength }

    /// Appends one document's tokens followed by EOD (nothing at all for an empty document).
    public mutating func append(document tokens: [Int32]) {
        guard !tokens.isEmpty else { return }
        pending.append(contentsOf: tokens)
        pending.append(endOfDocument)
    }

    /// The next full window, or nil when fewer than `windowLength` tokens are buffered.
    public mutating func nextWindow() -> [Int32]? {
        guard hasFullWindow else { return nil }
        let window = Array(pending[start ..< start + windowLength])
        start += windowLength
        // Compact occasionally so the buffer doesn't grow with the stream.
        if start >= windowLength * 4 || start == pending.count {
            pending.removeFirst(start)
            start = 0
        }
        return window
    }

    /// Call after the last document: returns the partial last window if `keepsPartialWindow` and any
    /// tokens remain (full windows must be taken with `nextWindow()` first), and empties the buffer.
    public mutating func finish() -> [Int32]? {
        defer { pending.removeAll(); start = 0 }
        guard keepsPartialWindow, bufferedTokenCount > 0, !hasFullWindow else { return nil }
        return Array(pending[start...])
    }

    /// Packs documents pulled from `nextDocument` into at most `maxWindows` windows, tokenizing
    /// lazily: no document is read or encoded once enough windows exist.
    ///
    /// - Parameters:
    ///   - nextDocument: returns the next document's text, or nil at the end of the corpus.
    ///   - encode: the tokenizer (text → ids, without EOD).
    public static func pack(windowLength: Int,
                            maxWindows: Int? = nil,
                            endOfDocument: Int32 = 0,
                            keepsPartialWindow: Bool = false,
                            nextDocument: () throws -> String?,
                            encode: (String) throws -> [Int32]) throws -> [[Int32]] {
        var packer = TokenPacker(windowLength: windowLength, endOfDocument: endOfDocument,
                                 keepsPartialWindow: keepsPartialWindow)
        var windows: [[Int32]] = []
        func done() -> Bool { maxWindows.map { windows.count >= $0 } ?? false }
        if done() { return windows }
        while let text = try nextDocument() {
            packer.append(document: try encode(text))
            while let window = packer.nextWindow() {
                windows.append(window)
                if done() { return windows }
            }
        }
        if let last = packer.finish() { windows.append(last) }
        return windows
    }

    /// `pack` over any (lazy) sequence of texts.
    public static func pack<S: Sequence>(documents: S,
                                         windowLength: Int,
                                         maxWindows: Int? = nil,
                                         endOfDocument: Int32 = 0,
                                         keepsPartialWindow: Bool = false,
                                         encode: (String) throws -> [Int32]) throws -> [[Int32]]
    where S.Element == String {
        var iterator = documents.makeIterator()
        return try pack(windowLength: windowLength, maxWindows: maxWindows, endOfDocument: endOfDocument,
                        keepsPartialWindow: keepsPartialWindow, nextDocument: { iterator.next() }, encode: encode)
    }

    /// `pack` over the documents of a Pile shard, streamed (filters in `reader` apply).
    public static func pack(reader: PileReader,
                            windowLength: Int,
                            maxWindows: Int? = nil,
                            endOfDocument: Int32 = 0,
                            keepsPartialWindow: Bool = false,
                            encode: (String) throws -> [Int32]) throws -> [[Int32]] {
        var stream = try reader.makeStream()
        return try pack(windowLength: windowLength, maxWindows: maxWindows, endOfDocument: endOfDocument,
                        keepsPartialWindow: keepsPartialWindow, nextDocument: { try stream.next()?.text },
                        encode: encode)
    }
}
