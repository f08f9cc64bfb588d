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
    /// Blocks 0..<layers.count (fewer than `config.numLayers` when loaded partially).
    public let layers: [NeoXLayerWeights]
    public let finalNormWeight: [Float]    // gpt_neox.final_layer_norm.weight [d]
    public let finalNormBias: [Float]      // gpt_neox.final_layer_norm.bias [d]
    /// `embed_out.weight [V, d]` (or `embed_in` when tied); nil when loaded without the unembedding.
    public let unembedding: [Float]?
    /// Tensors of the checkpoint this model never reads (for instance biases a config with
    /// `attention_bias: false` disables, or `embed_out` when `tie_word_embeddings` is set), so a
    /// caller can say so instead of silently running a different model than the file holds.
    public let ignoredTensors: [String]
    /// Whether NaN/±inf weights were accepted at load (then embedding rows are not checked either).
    public let allowsNonFinite: Bool

    /// Reads the weights of blocks `0..<(layers ?? config.numLayers)`; `loadUnembedding: false`
    /// skips `embed_out` (saves V·d floats when no logits will be asked for). Weights holding NaN
    /// or ±inf are refused (`FormatError.Kind.nonFinite`, naming tensor and count) unless
    /// `allowNonFinite` — a diverged checkpoint would otherwise turn every result into NaN.
    public init(checkpoint: Checkpoint, layers: Int? = nil, loadUnembedding: Bool = true, allowNonFinite: Bool = false) throws {
        let config = checkpoint.config
        let count = layers ?? config.numLayers
        guard count >= 0, count <= config.numLayers else {
            throw NeoXError(.invalidRequest, "cannot load \(count) layers: the model in \(checkpoint.directory.path) has \(config.numLayers)")
        }
        let d = config.hiddenSize, ff = config.intermediateSize, V = config.vocabSize
        self.config = config
        let used = Self.tensorNames(config: config, layers: count, unembedding: loadUnembedding)
        allowsNonFinite = allowNonFinite
        if !allowNonFinite {
            // The embedding table stays memory-mapped and only the rows a batch uses are read, so
            // its rows are checked as they are gathered (`NeoXEmbeddingTable.copyRow`), not here:
            // scanning it would page the whole table in for rows no input may ever use.
            for name in used where name != "gpt_neox.embed_in.weight" || (loadUnembedding && config.tieWordEmbeddings) {
                guard let entry = checkpoint.entries[name] else { continue }   // missing: reported by the load below
                let bad = entry.nonFiniteCount()
                if bad > 0 {
                    throw FormatError(.nonFinite, "tensor '\(name)' holds \(bad) non-finite values (NaN or ±inf) of \(entry.elementCount): "
                        + "a diverged or damaged checkpoint", file: entry.file.url)
                }
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

        var blocks: [NeoXLayerWeights] = []
        blocks.reserveCapacity(count)
        for L in 0..<count {
            let p = "gpt_neox.layers.\(L)."
            func t(_ name: String, _ shape: [Int]) throws -> [Float] { try checkpoint.tensor(p + name, shape: shape) }
            blocks.append(NeoXLayerWeights(
                ln1Weight: try t("input_layernorm.weight", [d]),
                ln1Bias: try t("input_layernorm.bias", [d]),
                ln2Weight: try t("post_attention_layernorm.weight", [d]),
                ln2Bias: try t("post_attention_layernorm.bias", [d]),
                qkvWeight: try t("attention.query_key_value.weight", [3 * d, d]),
                qkvBias: config.attentionBias ? try t("attention.query_key_value.bias", [3 * d]) : nil,
                denseWeight: try t("attention.dense.weight", [d, d]),
                denseBias: config.attentionBias ? try t("attention.dense.bias", [d]) : nil,
                upWeight: try t("mlp.dense_h_to_4h.weight", [ff, d]),
                upBias: try t("mlp.dense_h_to_4h.bias", [ff]),
                downWeight: try t("mlp.dense_4h_to_h.weight", [d, ff]),
                downBias: try t("mlp.dense_4h_to_h.bias", [d])))
        }
        self.layers = blocks
        finalNormWeight = try checkpoint.tensor("gpt_neox.final_layer_norm.weight", shape: [d])
        finalNormBias = try checkpoint.tensor("gpt_neox.final_layer_norm.bias", shape: [d])
        if loadUnembedding {
            let name = config.tieWordEmbeddings ? "gpt_neox.embed_in.weight" : "embed_out.weight"
            unembedding = try checkpoint.tensor(name, shape: [V, d])
        } else {
            unembedding = nil
        }
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
        AttentionHeadWeights(layer: layers[layer], config: config)
    }
}
