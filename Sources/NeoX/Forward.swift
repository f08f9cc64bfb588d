import CBLAS
import Formats
import Foundation

/// Receives one activation while the forward pass is running: its hook, its shape
/// (`[B, T, d]`, or `[B, T, V]` for `logits`) and a view of its values, valid only during the call.
public typealias ActivationObserver = (_ hook: HookPoint, _ shape: [Int], _ values: UnsafeBufferPointer<Float>) throws -> Void

/// What `NeoXModel.forward` returns.
public struct ForwardResult: Sendable {
    /// Captured activations (empty when an observer consumed them instead).
    public var activations: ActivationCache
    /// Logits as asked for by the `LogitsRequest` (nil for `.none`).
    public var logits: Tensor?
    /// How many blocks actually ran (the pass stops after the last block anything needs).
    public var layersRun: Int
}

/// A GPT-NeoX / Pythia model ready to run forward on the CPU in fp32, numerically matching
/// Hugging Face `GPTNeoXForCausalLM` with `attn_implementation="eager"`.
///
/// Immutable after `init`, so one model can serve concurrent `forward` calls from many threads;
/// each call allocates its own working buffers once.
public final class NeoXModel: Sendable {
    public let config: NeoXConfig
    public let weights: NeoXWeights
    /// The MLP non-linearity in use (the config's `hidden_act` unless overridden).
    public let activation: MLPActivation
    public let rotary: RotaryTable
    /// Where the weights came from (for summaries).
    public let directory: URL?
    public let layout: Checkpoint.Layout?

    /// - Parameters:
    ///   - activation: override the config's `hidden_act` (e.g. `.geluTanh` as GPT-NeoX trained).
    ///   - layers: load only blocks `0..<layers` (for probes that never look deeper).
    ///   - loadUnembedding: false skips `embed_out` (no logits possible, saves V·d floats).
    ///   - allowNonFinite: load weights holding NaN or ±inf instead of refusing them.
    ///   - residency: blocks fp32-resident or streamed from the memory map (nil: by size, `WeightResidency.automatic`).
    public init(checkpoint: Checkpoint, activation: MLPActivation? = nil, layers: Int? = nil,
                loadUnembedding: Bool = true, allowNonFinite: Bool = false, residency: WeightResidency? = nil) throws {
        config = checkpoint.config
        weights = try NeoXWeights(checkpoint: checkpoint, layers: layers, loadUnembedding: loadUnembedding,
                                  allowNonFinite: allowNonFinite, residency: residency)
        self.activation = activation ?? checkpoint.config.activation
        rotary = RotaryTable(dims: config.rotaryDims, positions: config.maxPositionEmbeddings, base: config.rotaryBase)
        directory = checkpoint.directory
        layout = checkpoint.layout
    }

    /// Loads only what `plan` needs: its blocks, and the unembedding if it computes logits.
    public convenience init(checkpoint: Checkpoint, plan: ForwardPlan, activation: MLPActivation? = nil,
                            allowNonFinite: Bool = false, residency: WeightResidency? = nil) throws {
        try self.init(checkpoint: checkpoint, activation: activation, layers: plan.layers,
                      loadUnembedding: plan.needsUnembedding, allowNonFinite: allowNonFinite, residency: residency)
    }

    /// Opens the checkpoint in `directory` (any layout `Checkpoint` reads) and loads it.
    public convenience init(directory: URL, activation: MLPActivation? = nil, layers: Int? = nil,
                            loadUnembedding: Bool = true, allowNonFinite: Bool = false, residency: WeightResidency? = nil) throws {
        try self.init(checkpoint: Checkpoint(directory: directory), activation: activation,
                      layers: layers, loadUnembedding: loadUnembedding, allowNonFinite: allowNonFinite, residency: residency)
    }

    /// Number of blocks whose weights are loaded.
    public var loadedLayers: Int { weights.blockCount }
    public var hasUnembedding: Bool { weights.unembedding != nil }

    /// Every hook this model can emit given what was loaded, in production order.
    public var hookPoints: [HookPoint] {
        var points = HookPoint.all(for: config, layers: loadedLayers)
        if loadedLayers < config.numLayers { points.removeAll { $0 == .lnFinalNormalized || $0 == .logits } }
        if !hasUnembedding { points.removeAll { $0 == .logits } }
        return points
    }

    // MARK: Input validation

    /// Checks a batch and returns (B, T): non-empty, equal lengths, T ≤ max_position_embeddings,
    /// every id in [0, vocab_size).
    public func validate(tokens: [[Int32]]) throws -> (batch: Int, length: Int) {
        guard let first = tokens.first else { throw NeoXError(.invalidInput, "empty input: the batch has no sequences") }
        let T = first.count
        guard T > 0 else { throw NeoXError(.invalidInput, "empty input: sequence 0 has no tokens") }
        for (b, row) in tokens.enumerated() where row.count != T {
            throw NeoXError(.invalidInput, "sequences in a batch must have equal length: sequence 0 has \(T) tokens, sequence \(b) has \(row.count)")
        }
        guard T <= config.maxPositionEmbeddings else {
            throw NeoXError(.invalidInput, "sequence length \(T) exceeds the model's context limit max_position_embeddings = \(config.maxPositionEmbeddings)")
        }
        let V = config.vocabSize
        for (b, row) in tokens.enumerated() {
            for (t, id) in row.enumerated() where id < 0 || Int(id) >= V {
                throw NeoXError(.invalidInput, "token id \(id) at sequence \(b), position \(t) is out of range: vocab_size is \(V) (valid ids 0..<\(V))")
            }
        }
        return (tokens.count, T)
    }

    // MARK: Forward

    /// Runs the model on a batch of B equal-length sequences.
    ///
    /// - Parameters:
    ///   - tokens: B sequences of T token ids (1 ≤ T ≤ max_position_embeddings).
    ///   - capture: hooks to produce (see `HookPoint`); each is `[B, T, d]` (`logits`: `[B, T, V]`).
    ///     Every pattern must match a hook of this model.
    ///   - logits: which logits to return in `ForwardResult.logits`.
    ///   - observer: if given, each captured activation is handed to it as soon as it exists and is
    ///     NOT stored in the result (stream layer by layer with O(B·T·d) memory). Errors it throws
    ///     abort the pass and propagate.
    /// - Returns: captured activations (unless observed) and the requested logits.
    ///
    /// Work stops after the last block a requested hook needs; the final LayerNorm runs only for
    /// `ln_final.hook_normalized` or logits.
    public func forward(tokens: [[Int32]], capture: HookFilter = .none, logits request: LogitsRequest = .none,
                        observer: ActivationObserver? = nil) throws -> ForwardResult {
        try forward(tokens: tokens, plan: ForwardPlan(config: config, capture: capture, logits: request), observer: observer)
    }

    /// Runs the model as `plan` says (see `forward(tokens:capture:logits:observer:)`).
    public func forward(tokens: [[Int32]], plan: ForwardPlan, observer: ActivationObserver? = nil) throws -> ForwardResult {
        try Kernels.withEngineThreads {
            try run(tokens: tokens, plan: plan, observer: observer)
        }
    }

    /// Bytes a pass of `plan` over B×T tokens allocates: the working buffers, the captured
    /// activations (unless an observer streams them) and the logits. Stated so a caller can size
    /// batches; `forward` refuses a pass that would not fit in the machine's memory.
    public func workingBytes(plan: ForwardPlan, batch B: Int, length T: Int, observed: Bool = false) -> Double {
        Self.workingBytes(config: config, plan: plan, batch: B, length: T, observed: observed)
    }

    /// Checks that the loaded weights can carry out `plan` on a batch of B sequences of T tokens.
    func check(_ plan: ForwardPlan, batch B: Int, length T: Int, observed: Bool) throws {
        let needed = workingBytes(plan: plan, batch: B, length: T, observed: observed)
        let available = Double(ProcessInfo.processInfo.physicalMemory)
        if needed > 0.9 * available {
            throw NeoXError(.invalidRequest, String(format: "a pass over %d×%d tokens with %d captured hooks needs about %.1f GiB of memory; "
                + "this machine has %.1f GiB: split the batch (or stream activations through an observer)",
                B, T, plan.hooks.count, needed / 1_073_741_824, available / 1_073_741_824))
        }
        if plan.layers > loadedLayers {
            let first = plan.hooks.first { ($0.layer ?? Int.max) >= loadedLayers } ?? .logits
            throw NeoXError(.notLoaded, "hook '\(first.name)' needs blocks beyond the \(loadedLayers) loaded (model has \(config.numLayers))")
        }
        if plan.needsUnembedding && !hasUnembedding {
            throw NeoXError(.notLoaded, "logits requested (hook 'logits' or a logits request), but the model was loaded without the unembedding")
        }
        if case .positions(let lists) = plan.logits {
            guard lists.count == B else {
                throw NeoXError(.invalidRequest, "logit positions name \(lists.count) sequences but the batch has \(B)")
            }
            for (b, list) in lists.enumerated() {
                for p in list where p < 0 || p >= T {
                    throw NeoXError(.invalidRequest, "logit position \(p) for sequence \(b) is outside 0..<\(T)")
                }
            }
        }
    }

    private func run(tokens: [[Int32]], plan: ForwardPlan, observer: ActivationObserver?) throws -> ForwardResult {
        let (B, T) = try validate(tokens: tokens)
        try check(plan, batch: B, length: T, observed: observer != nil)
        let cfg = config
        let N = B * T, d = cfg.hiddenSize, ff = cfg.intermediateSize, V = cfg.vocabSize
        let wanted = Set(plan.hooks)

        var result = ForwardResult(activations: ActivationCache(), logits: nil, layersRun: plan.layers)
        let shapeBTd = [B, T, d]
        func emit(_ point: HookPoint, _ buffer: UnsafeMutablePointer<Float>, count: Int, shape: [Int]) throws {
            guard wanted.contains(point) else { return }
            let view = UnsafeBufferPointer(start: buffer, count: count)
            if let observer { try observer(point, shape, view) } else {
                result.activations[point] = Tensor(shape: shape, data: Array(view))
            }
        }
        if plan.layers == 0 && !plan.runsFinalNorm { return result }

        // Working buffers, allocated once for the whole pass.
        let queryBlock = min(T, Self.attentionQueryBlock)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: N * d)          // residual stream
        let ln = UnsafeMutablePointer<Float>.allocate(capacity: N * d)         // LayerNorm output
        let qkv = UnsafeMutablePointer<Float>.allocate(capacity: N * 3 * d)    // fused projections
        let heads = UnsafeMutablePointer<Float>.allocate(capacity: N * d)      // attention, heads merged
        let attnOut = UnsafeMutablePointer<Float>.allocate(capacity: N * d)    // after dense
        let hidden = UnsafeMutablePointer<Float>.allocate(capacity: N * ff)    // MLP inner
        let mlpOut = UnsafeMutablePointer<Float>.allocate(capacity: N * d)
        defer { for p in [x, ln, qkv, heads, attnOut, hidden, mlpOut] { p.deallocate() } }

        // Embedding: x[b, t] = embed_in[tokens[b][t]].
        for b in 0..<B { for t in 0..<T { weights.embedding.copyRow(Int(tokens[b][t]), into: x + (b * T + t) * d) } }
        if !weights.allowsNonFinite, let bad = (0..<(N * d)).first(where: { !x[$0].isFinite }) {
            let (b, t) = (bad / d / T, bad / d % T)
            throw FormatError(.nonFinite, "tensor 'gpt_neox.embed_in.weight' row \(tokens[b][t]) (token at sequence \(b), position \(t)) "
                + "holds non-finite values (NaN or ±inf): a diverged or damaged checkpoint", file: weights.embedding.entry.file.url)
        }

        let eps = Float(cfg.layerNormEps)
        let blocks = BlockStream(weights: weights, order: Array(0..<plan.layers))
        for L in 0..<plan.layers {
            let w = try blocks.next()
            try emit(.residPre(L), x, count: N * d, shape: shapeBTd)

            // Attention: ln1 → fused QKV → rotary → causal softmax(q·kᵀ/√dh)·v → dense.
            Kernels.layerNorm(x, rows: N, width: d, weight: w.ln1Weight, bias: w.ln1Bias, eps: eps, into: ln)
            Kernels.linear(ln, rows: N, inFeatures: d, weight: w.qkvWeight, bias: w.qkvBias, outFeatures: 3 * d, into: qkv)
            causalSelfAttention(qkv: qkv, batch: B, length: T, into: heads, queryBlock: queryBlock)
            Kernels.linear(heads, rows: N, inFeatures: d, weight: w.denseWeight, bias: w.denseBias, outFeatures: d, into: attnOut)
            try emit(.attnOut(L), attnOut, count: N * d, shape: shapeBTd)

            if cfg.parallelResidual {
                // x ← x + attn(ln1(x)) + mlp(ln2(x)): both branches read the same x.
                Kernels.layerNorm(x, rows: N, width: d, weight: w.ln2Weight, bias: w.ln2Bias, eps: eps, into: ln)
                mlp(ln, rows: N, layer: w, hidden: hidden, into: mlpOut)
                try emit(.mlpOut(L), mlpOut, count: N * d, shape: shapeBTd)
                for i in 0..<(N * d) { x[i] = (mlpOut[i] + attnOut[i]) + x[i] }
            } else {
                // mid = x + attn(ln1(x));  x ← mid + mlp(ln2(mid)).
                for i in 0..<(N * d) { x[i] = attnOut[i] + x[i] }
                try emit(.residMid(L), x, count: N * d, shape: shapeBTd)
                Kernels.layerNorm(x, rows: N, width: d, weight: w.ln2Weight, bias: w.ln2Bias, eps: eps, into: ln)
                mlp(ln, rows: N, layer: w, hidden: hidden, into: mlpOut)
                try emit(.mlpOut(L), mlpOut, count: N * d, shape: shapeBTd)
                for i in 0..<(N * d) { x[i] = mlpOut[i] + x[i] }
            }
            try emit(.residPost(L), x, count: N * d, shape: shapeBTd)
        }
        guard plan.runsFinalNorm else { return result }

        // Final LayerNorm, then the unembedding only where asked.
        Kernels.layerNorm(x, rows: N, width: d, weight: weights.finalNormWeight, bias: weights.finalNormBias, eps: eps, into: ln)
        try emit(.lnFinalNormalized, ln, count: N * d, shape: shapeBTd)
        let normalized = UnsafeBufferPointer(start: UnsafePointer(ln), count: N * d)

        if wanted.contains(.logits) || plan.logits == .all {
            // Every position's logits: for the hook, for the request, or for both from one GEMM.
            var all = [Float](repeating: 0, count: N * V)
            try all.withUnsafeMutableBufferPointer { try unembed(normalizedHidden: normalized, rowCount: N, into: $0) }
            if wanted.contains(.logits) {
                if let observer {
                    try all.withUnsafeBufferPointer { try observer(.logits, [B, T, V], $0) }
                } else {
                    result.activations[.logits] = Tensor(shape: [B, T, V], data: all)
                }
            }
            switch plan.logits {
            case .none: break
            case .all: result.logits = Tensor(shape: [B, T, V], data: all)
            case .positions(let lists):
                let rows = Self.flatRows(lists, length: T)
                var gathered = [Float](repeating: 0, count: rows.count * V)
                for (r, row) in rows.enumerated() { for v in 0..<V { gathered[r * V + v] = all[row * V + v] } }
                result.logits = Tensor(shape: [rows.count, V], data: gathered)
            }
        } else if case .positions(let lists) = plan.logits {
            // Only the asked-for rows go through the unembedding.
            let rows = Self.flatRows(lists, length: T)
            var gathered = [Float](repeating: 0, count: rows.count * d)
            for (r, row) in rows.enumerated() { for i in 0..<d { gathered[r * d + i] = ln[row * d + i] } }
            var out = [Float](repeating: 0, count: rows.count * V)
            try gathered.withUnsafeBufferPointer { g in
                try out.withUnsafeMutableBufferPointer { try unembed(normalizedHidden: g, rowCount: rows.count, into: $0) }
            }
            result.logits = Tensor(shape: [rows.count, V], data: out)
        }
        return result
    }

    /// Row indices into the flattened `[B·T]` positions, sequence by sequence, in the order listed.
    private static func flatRows(_ lists: [[Int]], length T: Int) -> [Int] {
        lists.enumerated().flatMap { b, list in list.map { b * T + $0 } }
    }

    /// Logits for `rowCount` rows of final-LayerNorm output (`ln_final.hook_normalized`, `[rowCount, d]`)
    /// into `into` (`[rowCount, V]`): `logits = normalized · embed_outᵀ`. Lets an evaluator unembed
    /// chunk by chunk instead of holding B·T·V floats.
    public func unembed(normalizedHidden rows: UnsafeBufferPointer<Float>, rowCount: Int,
                        into output: UnsafeMutableBufferPointer<Float>) throws {
        guard let table = weights.unembedding else {
            throw NeoXError(.notLoaded, "unembed: the model was loaded without the unembedding (loadUnembedding: false)")
        }
        let d = config.hiddenSize, V = config.vocabSize
        guard rows.count >= rowCount * d, output.count >= rowCount * V else {
            throw NeoXError(.invalidRequest, "unembed: \(rowCount) rows need \(rowCount * d) inputs and \(rowCount * V) outputs, got \(rows.count) and \(output.count)")
        }
        guard rowCount > 0 else { return }
        Kernels.withEngineThreads {
            table.withUnsafeBufferPointer { W in
                Kernels.linear(rows.baseAddress!, rows: rowCount, inFeatures: d, weight: W.baseAddress!, bias: nil,
                               outFeatures: V, into: output.baseAddress!)
            }
        }
    }

    // MARK: Blocks

    /// Query rows handled per score block: scores for a block of queries are computed only against
    /// the keys they may see (0...last query), so the masked upper triangle is (almost) never computed.
    static let attentionQueryBlock = 128

    /// Multi-head causal self-attention of every (sequence, head) pair, written head-merged into
    /// `out` `[B·T, d]`. `qkv` is `[B·T, 3d]` with HF's per-head interleaving: head h's q, k, v are
    /// columns `[3·dh·h, 3·dh·h + dh)`, `+dh`, `+2dh`. Rotary is applied to q and k in place.
    func causalSelfAttention(qkv: UnsafeMutablePointer<Float>, batch B: Int, length T: Int,
                             into out: UnsafeMutablePointer<Float>, queryBlock: Int) {
        let H = config.numHeads, dh = config.headDim, d = config.hiddenSize
        let ld = 3 * d
        let scale = Float(1 / Double(dh).squareRoot())   // HF: (q·kᵀ) · head_size**-0.5
        let rotary = self.rotary
        let sharedQKV = SharedPointer(qkv), sharedOut = SharedPointer(out)
        // One task per (sequence, head), scheduled dynamically; each owns a score block.
        Kernels.parallel(B * H) { item in
            let qkv = sharedQKV.base, out = sharedOut.base
            let S = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock * T)
            defer { S.deallocate() }
            let b = item / H, h = item % H
            let q = qkv + b * T * ld + h * 3 * dh, k = q + dh, v = q + 2 * dh
            let o = out + b * T * d + h * dh
            rotary.apply(q, rows: T, stride: ld)
            rotary.apply(k, rows: T, stride: ld)
            var i0 = 0
            while i0 < T {
                let rows = min(queryBlock, T - i0), keys = i0 + rows
                // S[r, j] = scale · q[i0+r] · k[j] for j < keys
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keys), Int32(dh),
                            scale, q + i0 * ld, Int32(ld), k, Int32(ld), 0, S, Int32(keys))
                // Row-wise causal softmax (fp32): query i0+r sees keys 0...i0+r.
                for r in 0..<rows { Kernels.causalSoftmaxRow(S + r * keys, visible: i0 + r + 1, count: keys) }
                // o[i0+r] = Σ_j P[r, j] · v[j]
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(dh), Int32(keys),
                            1, S, Int32(keys), v, Int32(ld), 0, o + i0 * d, Int32(d))
                i0 += rows
            }
        }
    }

    /// `dense_4h_to_h(act(dense_h_to_4h(input)))` for `rows` rows.
    func mlp(_ input: UnsafeMutablePointer<Float>, rows: Int, layer w: NeoXLayerWeights,
             hidden: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let d = config.hiddenSize, ff = config.intermediateSize
        Kernels.linear(input, rows: rows, inFeatures: d, weight: w.upWeight, bias: w.upBias, outFeatures: ff, into: hidden)
        let activation = self.activation
        let total = rows * ff, parts = min(Kernels.workers, max(1, total / 65536))
        let shared = SharedPointer(hidden)
        Kernels.parallel(parts) { part in
            let range = Kernels.slice(total, parts: parts, part: part)
            Kernels.activate(shared.base + range.lowerBound, count: range.count, activation)
        }
        Kernels.linear(hidden, rows: rows, inFeatures: ff, weight: w.downWeight, bias: w.downBias, outFeatures: d, into: out)
    }
}
