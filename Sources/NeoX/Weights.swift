import Formats
import Foundation

/// The fp32 weights of one transformer block, in Hugging Face's layout (`nn.Linear` weights are
/// `[out, in]`, row-major). Biases of the attention projections are nil when the config says
/// `attention_bias: false`.
public struct NeoXLayerWeights: Sendable {
    public var ln1Weight: [Float]          // input_layernorm.weight [d]
    public var ln1Bias: [Float]            // input_layernorm.bias [d]
    public var ln2Weight: [Float]          // post_attention_layernorm.weight [d]
    public var ln2Bias: [Float]            // post_attention_layernorm.bias [d]
    public var qkvWeight: [Float]          // attention.query_key_value.weight [3d, d], rows interleaved per head (q,k,v)
    public var qkvBias: [Float]?           // attention.query_key_value.bias [3d]
    public var denseWeight: [Float]        // attention.dense.weight [d, d]
    public var denseBias: [Float]?         // attention.dense.bias [d]
    public var upWeight: [Float]           // mlp.dense_h_to_4h.weight [ff, d]
    public var upBias: [Float]             // mlp.dense_h_to_4h.bias [ff]
    public var downWeight: [Float]         // mlp.dense_4h_to_h.weight [d, ff]
    public var downBias: [Float]           // mlp.dense_4h_to_h.bias [d]
}

/// The token-embedding table, read row by row straight from the checkpoint's memory map
/// (so a 50k-row table costs only the rows a batch touches), widened to fp32 on the way.
public struct NeoXEmbeddingTable: Sendable {
    public let entry: TensorEntry
    public let rows: Int
    public let width: Int

    init(entry: TensorEntry) {
        self.entry = entry
        self.rows = entry.shape[0]
        self.width = entry.shape[1]
    }

    /// Writes row `id` (already range-checked) as fp32 into `destination[0..<width]`.
    func copyRow(_ id: Int, into destination: UnsafeMutablePointer<Float>) {
        let stride = width * entry.dtype.byteSize
        entry.withUnsafeBytes { bytes in
            entry.dtype.widen(bytes.baseAddress! + id * stride, count: width, into: destination)
        }
    }
}

/// Every weight a forward pass needs, validated against `config.json` by name and shape.
public struct NeoXWeights: Sendable {
    public let config: NeoXConfig
    /// `gpt_neox.embed_in.weight [V, d]`, memory-mapped.
    public let embedding: NeoXEmbeddingTable
    /// How the blocks are held (see `WeightResidency`).
    public let residency: WeightResidency
    /// Blocks loaded: 0..<blockCount (fewer than `config.numLayers` when loaded partially).
    public let blockCount: Int
    /// The fp32 blocks when resident (empty when streamed).
    let residentBlocks: [NeoXLayerWeights]
    /// The blocks' tensors in the memory map when streamed (empty when resident).
    let streamedBlocks: [BlockTensors]
    public let finalNormWeight: [Float]    // gpt_neox.final_layer_norm.weight [d]
    public let finalNormBias: [Float]      // gpt_neox.final_layer_norm.bias [d]
    /// `embed_out.weight [V, d]` (or `embed_in` when tied); nil when loaded without the unembedding.
    /// Always fp32-resident (V·d floats: 1 GB for pythia-12b).
    public let unembedding: [Float]?
    /// Tensors of the checkpoint this model never reads (for instance biases a config with
    /// `attention_bias: false` disables, or `embed_out` when `tie_word_embeddings` is set), so a
    /// caller can say so instead of silently running a different model than the file holds.
    public let ignoredTensors: [String]
    /// Whether NaN/±inf weights were accepted at load (then embedding rows are not checked either).
    public let allowsNonFinite: Bool

    /// Every block in fp32. Resident: the blocks themselves; streamed: each widened anew (the
    /// model's whole fp32 size; for inspection of small models, never on an engine path).
    public var layers: [NeoXLayerWeights] {
        residency == .resident ? residentBlocks : (0..<blockCount).map(widenedBlock)
    }

    /// Block `layer` in fp32 without the finite check (for views: `layers`, `attentionHeads`).
    func widenedBlock(_ layer: Int) -> NeoXLayerWeights {
        if residency == .resident { return residentBlocks[layer] }
        var block = streamedBlocks[layer].allocate()
        try? streamedBlocks[layer].widen(into: &block, checkFinite: false)   // cannot throw unchecked
        return block
    }

    /// Block `layer` in fp32 (resident: the loaded block; streamed: widened now into fresh arrays).
    public func block(_ layer: Int) throws -> NeoXLayerWeights {
        precondition(layer >= 0 && layer < blockCount, "block \(layer) outside the \(blockCount) loaded")
        if residency == .resident { return residentBlocks[layer] }
        var block = streamedBlocks[layer].allocate()
        try streamedBlocks[layer].widen(into: &block, checkFinite: !allowsNonFinite)
        return block
    }

    /// Reads the weights of blocks `0..<(layers ?? config.numLayers)`; `loadUnembedding: false`
    /// skips `embed_out` (saves V·d floats when no logits will be asked for). Weights holding NaN
    /// or ±inf are refused (`FormatError.Kind.nonFinite`, naming tensor and count) unless
    /// `allowNonFinite` — a diverged checkpoint would otherwise turn every result into NaN. Streamed
    /// blocks are checked as they are widened, so the error comes from the pass that first reads them.
    /// `residency` nil: `WeightResidency.automatic` by size.
    public init(checkpoint: Checkpoint, layers: Int? = nil, loadUnembedding: Bool = true, allowNonFinite: Bool = false,
                residency: WeightResidency? = nil) throws {
        let config = checkpoint.config
        let count = layers ?? config.numLayers
        guard count >= 0, count <= config.numLayers else {
            throw NeoXError(.invalidRequest, "cannot load \(count) layers: the model in \(checkpoint.directory.path) has \(config.numLayers)")
        }
        let residency = residency ?? WeightResidency.automatic(config: config, layers: count)
        let d = config.hiddenSize, ff = config.intermediateSize, V = config.vocabSize
        self.config = config
        self.residency = residency
        blockCount = count
        let used = Self.tensorNames(config: config, layers: residency == .resident ? count : 0, unembedding: loadUnembedding)
        allowsNonFinite = allowNonFinite
        if !allowNonFinite {
            // The embedding table stays memory-mapped and only the rows a batch uses are read, so
            // its rows are checked as they are gathered (`NeoXEmbeddingTable.copyRow`), not here:
            // scanning it would page the whole table in for rows no input may ever use.
            for name in used.sorted() where name != "gpt_neox.embed_in.weight" || (loadUnembedding && config.tieWordEmbeddings) {
                guard let entry = checkpoint.entries[name] else { continue }   // missing: reported by the load below
                let bad = entry.nonFiniteCount()
                if bad > 0 { throw BlockTensors.nonFinite(entry, count: bad) }
            }
        }
        let everything = Self.tensorNames(config: config, layers: config.numLayers, unembedding: true)
        ignoredTensors = checkpoint.entries.keys.filter { !everything.contains($0) }.sorted()

        guard let embedEntry = checkpoint.entries["gpt_neox.embed_in.weight"] else {
            throw FormatError(.missingTensor, "missing tensor 'gpt_neox.embed_in.weight' (layout: \(checkpoint.layout))", file: checkpoint.directory)
        }
        guard embedEntry.shape == [V, d] else {
            throw FormatError(.shapeMismatch, "tensor 'gpt_neox.embed_in.weight' has shape \(embedEntry.shape), expected \([V, d]) from config.json", file: embedEntry.file.url)
        }
        guard embedEntry.dtype.isFloatingPoint else {
            throw FormatError(.unsupported, "tensor 'gpt_neox.embed_in.weight' has dtype \(embedEntry.dtype.rawValue), expected a floating-point type", file: embedEntry.file.url)
        }
        embedding = NeoXEmbeddingTable(entry: embedEntry)

        var tensors: [BlockTensors] = []
        tensors.reserveCapacity(count)
        for L in 0..<count { tensors.append(try BlockTensors(checkpoint: checkpoint, layer: L)) }
        if residency == .resident {
            residentBlocks = try tensors.map { block in
                var fp32 = block.allocate()
                try block.widen(into: &fp32, checkFinite: false)   // checked above, from the stored bits
                return fp32
            }
            streamedBlocks = []
        } else {
            residentBlocks = []
            streamedBlocks = tensors
        }
        finalNormWeight = try checkpoint.tensor("gpt_neox.final_layer_norm.weight", shape: [d])
        finalNormBias = try checkpoint.tensor("gpt_neox.final_layer_norm.bias", shape: [d])
        if loadUnembedding {
            let name = config.tieWordEmbeddings ? "gpt_neox.embed_in.weight" : "embed_out.weight"
            unembedding = try checkpoint.tensor(name, shape: [V, d])
        } else {
            unembedding = nil
        }
        _ = ff
    }
}

/// One block's tensors as the checkpoint stores them (memory-mapped, any float dtype), shapes
/// checked at load; widened to fp32 on demand.
struct BlockTensors: Sendable {
    let ln1Weight, ln1Bias, ln2Weight, ln2Bias: TensorEntry
    let qkvWeight: TensorEntry
    let qkvBias: TensorEntry?
    let denseWeight: TensorEntry
    let denseBias: TensorEntry?
    let upWeight, upBias, downWeight, downBias: TensorEntry

    init(checkpoint: Checkpoint, layer L: Int) throws {
        let config = checkpoint.config, d = config.hiddenSize, ff = config.intermediateSize
        let p = "gpt_neox.layers.\(L)."
        func t(_ name: String, _ shape: [Int]) throws -> TensorEntry { try checkpoint.entry(p + name, shape: shape) }
        ln1Weight = try t("input_layernorm.weight", [d])
        ln1Bias = try t("input_layernorm.bias", [d])
        ln2Weight = try t("post_attention_layernorm.weight", [d])
        ln2Bias = try t("post_attention_layernorm.bias", [d])
        qkvWeight = try t("attention.query_key_value.weight", [3 * d, d])
        qkvBias = config.attentionBias ? try t("attention.query_key_value.bias", [3 * d]) : nil
        denseWeight = try t("attention.dense.weight", [d, d])
        denseBias = config.attentionBias ? try t("attention.dense.bias", [d]) : nil
        upWeight = try t("mlp.dense_h_to_4h.weight", [ff, d])
        upBias = try t("mlp.dense_h_to_4h.bias", [ff])
        downWeight = try t("mlp.dense_4h_to_h.weight", [d, ff])
        downBias = try t("mlp.dense_4h_to_h.bias", [d])
    }

    private var all: [TensorEntry] {
        [ln1Weight, ln1Bias, ln2Weight, ln2Bias, qkvWeight] + (qkvBias.map { [$0] } ?? []) + [denseWeight]
            + (denseBias.map { [$0] } ?? []) + [upWeight, upBias, downWeight, downBias]
    }

    /// Fresh fp32 arrays of this block's shapes (zeros).
    func allocate() -> NeoXLayerWeights {
        func z(_ e: TensorEntry) -> [Float] { [Float](repeating: 0, count: e.elementCount) }
        return NeoXLayerWeights(ln1Weight: z(ln1Weight), ln1Bias: z(ln1Bias), ln2Weight: z(ln2Weight), ln2Bias: z(ln2Bias),
                                qkvWeight: z(qkvWeight), qkvBias: qkvBias.map(z), denseWeight: z(denseWeight),
                                denseBias: denseBias.map(z), upWeight: z(upWeight), upBias: z(upBias),
                                downWeight: z(downWeight), downBias: z(downBias))
    }

    /// Asks the kernel to read this block's pages from disk ahead of `widen`.
    func prefetch() { for entry in all { entry.prefetch() } }

    /// Widens every tensor into `block`'s arrays in place (their storage is reused when uniquely
    /// held) and releases the mapped pages; with `checkFinite`, refuses NaN/±inf as the load does.
    func widen(into block: inout NeoXLayerWeights, checkFinite: Bool) throws {
        func one(_ entry: TensorEntry, _ array: inout [Float]) throws {
            precondition(array.count == entry.elementCount, "block buffer for '\(entry.name)' has the wrong size")
            try array.withUnsafeMutableBufferPointer { buffer in
                entry.widen(into: buffer.baseAddress!)
                if checkFinite {
                    var bad = 0
                    for v in buffer where !v.isFinite { bad += 1 }
                    if bad > 0 { throw Self.nonFinite(entry, count: bad) }
                }
            }
        }
        try one(ln1Weight, &block.ln1Weight)
        try one(ln1Bias, &block.ln1Bias)
        try one(ln2Weight, &block.ln2Weight)
        try one(ln2Bias, &block.ln2Bias)
        try one(qkvWeight, &block.qkvWeight)
        if let qkvBias { try one(qkvBias, &block.qkvBias!) }
        try one(denseWeight, &block.denseWeight)
        if let denseBias { try one(denseBias, &block.denseBias!) }
        try one(upWeight, &block.upWeight)
        try one(upBias, &block.upBias)
        try one(downWeight, &block.downWeight)
        try one(downBias, &block.downBias)
    }

    static func nonFinite(_ entry: TensorEntry, count bad: Int) -> FormatError {
        FormatError(.nonFinite, "tensor '\(entry.name)' holds \(bad) non-finite values (NaN or ±inf) of \(entry.elementCount): "
            + "a diverged or damaged checkpoint", file: entry.file.url)
    }
}

extension NeoXWeights {
    /// The checkpoint tensors a model of `config` reads for `layers` blocks (and the unembedding).
    static func tensorNames(config: NeoXConfig, layers: Int, unembedding: Bool) -> Set<String> {
        var names: Set<String> = ["gpt_neox.embed_in.weight", "gpt_neox.final_layer_norm.weight", "gpt_neox.final_layer_norm.bias"]
        for layer in 0..<layers {
            let prefix = "gpt_neox.layers.\(layer)."
            var suffixes = ["input_layernorm.weight", "input_layernorm.bias", "post_attention_layernorm.weight",
                            "post_attention_layernorm.bias", "attention.query_key_value.weight", "attention.dense.weight",
                            "mlp.dense_h_to_4h.weight", "mlp.dense_h_to_4h.bias", "mlp.dense_4h_to_h.weight", "mlp.dense_4h_to_h.bias"]
            if config.attentionBias { suffixes += ["attention.query_key_value.bias", "attention.dense.bias"] }
            names.formUnion(suffixes.map { prefix + $0 })
        }
        if unembedding && !config.tieWordEmbeddings { names.insert("embed_out.weight") }
        return names
    }
}

/// Per-head views of one block's attention weights, so no caller re-derives the fused-QKV
/// interleave from tensor names. Matrices are row-major in Hugging Face's `nn.Linear` orientation
/// (out × in), like every other weight here; TransformerLens's `W_Q[h]`, `W_K[h]`, `W_V[h]`
/// (`[d, dh]`) and `W_O[h]` (`[dh, d]`) are their transposes.
///
/// `attention.query_key_value.weight` `[3d, d]` interleaves per head: head h's query rows are
/// `[3·dh·h, 3·dh·h + dh)`, its key rows the next dh, its value rows the dh after that.
/// `attention.dense.weight` `[d, d]` reads head h's output `z` in columns `[dh·h, dh·(h+1))`.
public struct AttentionHeadWeights: Sendable {
    public let hiddenSize: Int
    public let numHeads: Int
    public var headDim: Int { hiddenSize / numHeads }
    private let qkvWeight: [Float]
    private let qkvBias: [Float]?
    private let denseWeight: [Float]

    /// From the fused tensors as stored (`[3d, d]`, `[3d]` or nil, `[d, d]`).
    public init(qkvWeight: [Float], qkvBias: [Float]? = nil, denseWeight: [Float], hiddenSize: Int, numHeads: Int) {
        precondition(numHeads > 0 && hiddenSize % numHeads == 0, "hidden size \(hiddenSize) must divide into \(numHeads) heads")
        precondition(qkvWeight.count == 3 * hiddenSize * hiddenSize && denseWeight.count == hiddenSize * hiddenSize,
                     "query_key_value must be [3d, d] and dense [d, d] for d = \(hiddenSize)")
        precondition(qkvBias.map { $0.count == 3 * hiddenSize } ?? true, "query_key_value.bias must be [3d]")
        self.hiddenSize = hiddenSize
        self.numHeads = numHeads
        self.qkvWeight = qkvWeight
        self.qkvBias = qkvBias
        self.denseWeight = denseWeight
    }

    public init(layer: NeoXLayerWeights, config: NeoXConfig) {
        self.init(qkvWeight: layer.qkvWeight, qkvBias: layer.qkvBias, denseWeight: layer.denseWeight,
                  hiddenSize: config.hiddenSize, numHeads: config.numHeads)
    }

    /// Which third of a head's fused rows.
    public enum Projection: Int, Sendable, CaseIterable { case query = 0, key = 1, value = 2 }

    /// W_Q, W_K or W_V of `head`: `[dh, d]` (q = W_Q·x + b_Q, before rotary).
    public func weight(_ projection: Projection, head: Int) -> [Float] {
        let d = hiddenSize, dh = headDim, first = firstRow(projection, head: head)
        return Array(qkvWeight[(first * d)..<((first + dh) * d)])
    }

    /// b_Q, b_K or b_V of `head`: `[dh]`; nil when the model has no attention bias.
    public func bias(_ projection: Projection, head: Int) -> [Float]? {
        guard let qkvBias else { return nil }
        let first = firstRow(projection, head: head)
        return Array(qkvBias[first..<(first + headDim)])
    }

    /// W_O of `head`: `[d, dh]`, the columns of `dense` that read the head's output z.
    public func output(head: Int) -> [Float] {
        let d = hiddenSize, dh = headDim
        precondition(head >= 0 && head < numHeads, "head \(head) outside 0..<\(numHeads)")
        var columns = [Float](repeating: 0, count: d * dh)
        for r in 0..<d { for c in 0..<dh { columns[r * dh + c] = denseWeight[r * d + dh * head + c] } }
        return columns
    }

    private func firstRow(_ projection: Projection, head: Int) -> Int {
        precondition(head >= 0 && head < numHeads, "head \(head) outside 0..<\(numHeads)")
        return 3 * headDim * head + projection.rawValue * headDim
    }
}

extension NeoXWeights {
    /// Per-head views of block `layer`'s attention.
    public func attentionHeads(layer: Int) -> AttentionHeadWeights {
        AttentionHeadWeights(layer: widenedBlock(layer), config: config)
    }
}
