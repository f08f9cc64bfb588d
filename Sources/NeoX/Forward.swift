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
        if loadedLayers < config.numLayers { points.removeAll { $0 == .lnFinalScale || $0 == .lnFinalNormalized || $0 == .logits } }
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
    ///   - capture: hooks to produce (see `HookPoint` for names and shapes). Every pattern must
    ///     match a hook of this model.
    ///   - logits: which logits to return in `ForwardResult.logits`.
    ///   - interventions: edits of hooks (TransformerLens `run_with_hooks`): each edits its hook's
    ///     activation in place, in the order given, and the rest of the pass runs on the edited
    ///     values; a captured or observed hook shows them edited.
    ///   - observer: if given, each captured activation is handed to it as soon as it exists and is
    ///     NOT stored in the result (stream layer by layer with O(B·T·d) memory). Errors it throws
    ///     abort the pass and propagate.
    /// - Returns: captured activations (unless observed) and the requested logits.
    ///
    /// Work stops after the last block a requested hook needs; the final LayerNorm runs only for
    /// `ln_final.*` or logits. Only what is captured or edited costs anything: the `[B, H, T, T]`
    /// attention matrices and the `[B, T, H, d]` per-head results are formed only for the blocks
    /// whose `attn.hook_attn_scores` / `attn.hook_pattern` / `attn.hook_result` are asked for.
    public func forward(tokens: [[Int32]], capture: HookFilter = .none, logits request: LogitsRequest = .none,
                        interventions: [Intervention] = [], observer: ActivationObserver? = nil) throws -> ForwardResult {
        try forward(tokens: tokens, plan: ForwardPlan(config: config, capture: capture, logits: request),
                    interventions: interventions, observer: observer)
    }

    /// Runs the model as `plan` says (see `forward(tokens:capture:logits:interventions:observer:)`).
    /// `blockDone`, if given, is called after each block with its index (progress of a long pass).
    public func forward(tokens: [[Int32]], plan: ForwardPlan, interventions: [Intervention] = [],
                        observer: ActivationObserver? = nil, blockDone: ((Int) -> Void)? = nil) throws -> ForwardResult {
        try Kernels.withEngineThreads {
            try run(tokens: tokens, plan: plan, interventions: interventions, observer: observer, blockDone: blockDone)
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

    private func run(tokens: [[Int32]], plan: ForwardPlan, interventions: [Intervention],
                     observer: ActivationObserver?, blockDone: ((Int) -> Void)?) throws -> ForwardResult {
        let (B, T) = try validate(tokens: tokens)
        try check(plan, batch: B, length: T, observed: observer != nil)
        let edits = try InterventionSet(interventions, config: config, plan: plan)
        let cfg = config
        let N = B * T, d = cfg.hiddenSize, ff = cfg.intermediateSize, V = cfg.vocabSize
        let H = cfg.numHeads, dh = cfg.headDim
        let wanted = Set(plan.hooks)
        /// A hook is computed when it is captured or edited.
        func needs(_ point: HookPoint) -> Bool { wanted.contains(point) || edits.touches(point) }

        var result = ForwardResult(activations: ActivationCache(), logits: nil, layersRun: plan.layers)
        // Every hook site: its interventions edit the buffer in place (the pass carries on with the
        // edited values), then it is captured or observed if asked for.
        func hook(_ point: HookPoint, _ buffer: UnsafeMutablePointer<Float>) throws {
            guard needs(point) else { return }
            let shape = point.shape(config: cfg, batch: B, length: T)
            try edits.apply(point, buffer, shape: shape)
            guard wanted.contains(point) else { return }
            let view = UnsafeBufferPointer(start: buffer, count: shape.reduce(1, *))
            if let observer { try observer(point, shape, view) } else {
                result.activations[point] = Tensor(shape: shape, data: Array(view))
            }
        }
        if plan.layers == 0 && !plan.runsFinalNorm && !needs(.embed) { return result }

        // Working buffers, allocated once for the whole pass; the hook-only ones only when some block needs them.
        let blocks = 0..<plan.layers
        let needsHeadViews = blocks.contains { L in [BlockHook.q, .k, .v, .rotQ, .rotK].contains { needs(.block(L, $0)) } }
        let needsMatrices = blocks.contains { needs(.block($0, .attnScores)) || needs(.block($0, .pattern)) }
        let needsResults = blocks.contains { needs(.block($0, .result)) }
        let queryBlock = min(T, Self.attentionQueryBlock)
        let rowLayout = RowLayout.sequences(length: T)   // each sequence tiled from its own start (`Kernels.linear`)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: N * d)          // residual stream
        let ln = UnsafeMutablePointer<Float>.allocate(capacity: N * d)         // LayerNorm output
        let qkv = UnsafeMutablePointer<Float>.allocate(capacity: N * 3 * d)    // fused projections
        let heads = UnsafeMutablePointer<Float>.allocate(capacity: N * d)      // attention, heads merged (= hook_z)
        let attnOut = UnsafeMutablePointer<Float>.allocate(capacity: N * d)    // after dense
        let hidden = UnsafeMutablePointer<Float>.allocate(capacity: N * ff)    // MLP inner
        let mlpOut = UnsafeMutablePointer<Float>.allocate(capacity: N * d)
        let rowStatistics = UnsafeMutablePointer<Float>.allocate(capacity: 2 * N)                   // LayerNorm mean, scale
        let headView = UnsafeMutablePointer<Float>.allocate(capacity: needsHeadViews ? N * d : 0)   // q/k/v as [B, T, H, dh]
        let matrices = UnsafeMutablePointer<Float>.allocate(capacity: needsMatrices ? B * H * T * T : 0)  // scores → pattern
        let perHead = UnsafeMutablePointer<Float>.allocate(capacity: needsResults ? N * H * d : 0)  // hook_result
        defer { for p in [x, ln, qkv, heads, attnOut, hidden, mlpOut, rowStatistics, headView, matrices, perHead] { p.deallocate() } }

        // Embedding: x[b, t] = embed_in[tokens[b][t]].
        for b in 0..<B { for t in 0..<T { weights.embedding.copyRow(Int(tokens[b][t]), into: x + (b * T + t) * d) } }
        if !weights.allowsNonFinite, let bad = (0..<(N * d)).first(where: { !x[$0].isFinite }) {
            let (b, t) = (bad / d / T, bad / d % T)
            throw FormatError(.nonFinite, "tensor 'gpt_neox.embed_in.weight' row \(tokens[b][t]) (token at sequence \(b), position \(t)) "
                + "holds non-finite values (NaN or ±inf): a diverged or damaged checkpoint", file: weights.embedding.entry.file.url)
        }
        try hook(.embed, x)

        let eps = Float(cfg.layerNormEps)
        /// LayerNorm of `input` into `ln` through its hooks: `hook_scale` and `hook_normalized`
        /// (TransformerLens 3.x: before the weight and bias), then the affine part.
        func layerNorm(_ input: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                       scale scalePoint: HookPoint, normalized normalizedPoint: HookPoint) throws {
            let means = rowStatistics, scales = rowStatistics + N
            Kernels.layerNormNormalize(input, rows: N, width: d, eps: eps, into: ln, means: means, scales: scales)
            try hook(scalePoint, scales)
            if edits.touches(scalePoint) {
                // As TransformerLens: normalized = (x − mean) / scale, with the edited scale.
                for r in 0..<N { for i in 0..<d { ln[r * d + i] = (input[r * d + i] - means[r]) / scales[r] } }
            }
            try hook(normalizedPoint, ln)
            Kernels.affine(ln, rows: N, width: d, weight: weight, bias: bias)
        }
        /// q, k or v (`part` 0, 1, 2) of every head as `[B, T, H, dh]`, gathered from the fused
        /// projection for its hook and scattered back when an intervention edited it.
        func headsHook(_ point: HookPoint, part: Int) throws {
            guard needs(point) else { return }
            for row in 0..<N { for h in 0..<H { (headView + (row * H + h) * dh).update(from: qkv + row * 3 * d + h * 3 * dh + part * dh, count: dh) } }
            try hook(point, headView)
            guard edits.touches(point) else { return }
            for row in 0..<N { for h in 0..<H { (qkv + row * 3 * d + h * 3 * dh + part * dh).update(from: headView + (row * H + h) * dh, count: dh) } }
        }

        let stream = BlockStream(weights: weights, order: Array(blocks))
        for L in blocks {
            let w = try stream.next()
            try hook(.residPre(L), x)

            // Attention: ln1 → fused QKV → rotary → causal softmax(q·kᵀ/√dh)·v → dense.
            try layerNorm(x, weight: w.ln1Weight, bias: w.ln1Bias, scale: .block(L, .ln1Scale), normalized: .block(L, .ln1Normalized))
            Kernels.linear(ln, rows: N, inFeatures: d, weight: w.qkvWeight, bias: w.qkvBias, outFeatures: 3 * d, into: qkv, layout: rowLayout)
            try headsHook(.block(L, .q), part: 0)
            try headsHook(.block(L, .k), part: 1)
            try headsHook(.block(L, .v), part: 2)
            applyRotary(qkv: qkv, batch: B, length: T)
            try headsHook(.block(L, .rotQ), part: 0)
            try headsHook(.block(L, .rotK), part: 1)
            let scoresPoint = HookPoint.block(L, .attnScores), patternPoint = HookPoint.block(L, .pattern)
            if needs(scoresPoint) || needs(patternPoint) {
                attentionScores(qkv: qkv, batch: B, length: T, into: matrices)
                try hook(scoresPoint, matrices)
                attentionPattern(matrices, batch: B, length: T, causal: !edits.touches(scoresPoint))
                try hook(patternPoint, matrices)
                attentionMix(pattern: matrices, qkv: qkv, batch: B, length: T, into: heads)
            } else {
                causalSelfAttention(qkv: qkv, batch: B, length: T, into: heads, queryBlock: queryBlock, rotated: true)
            }
            try hook(.block(L, .z), heads)
            let resultPoint = HookPoint.block(L, .result)
            if needs(resultPoint) {
                headResults(heads, rows: N, length: T, denseWeight: w.denseWeight, into: perHead)
                try hook(resultPoint, perHead)
            }
            if edits.touches(resultPoint) {
                // As TransformerLens with per-head results: attn_out = Σ_h result_h + b_O.
                for row in 0..<N {
                    let o = attnOut + row * d
                    for i in 0..<d { o[i] = 0 }
                    for h in 0..<H { let r = perHead + (row * H + h) * d; for i in 0..<d { o[i] += r[i] } }
                    if let bias = w.denseBias { for i in 0..<d { o[i] += bias[i] } }
                }
            } else {
                Kernels.linear(heads, rows: N, inFeatures: d, weight: w.denseWeight, bias: w.denseBias, outFeatures: d, into: attnOut, layout: rowLayout)
            }
            try hook(.attnOut(L), attnOut)

            // MLP: ln2 → dense_h_to_4h → act → dense_4h_to_h, on x (parallel) or on mid = x + attn (sequential).
            if !cfg.parallelResidual {
                for i in 0..<(N * d) { x[i] = attnOut[i] + x[i] }
                try hook(.residMid(L), x)
            }
            try layerNorm(x, weight: w.ln2Weight, bias: w.ln2Bias, scale: .block(L, .ln2Scale), normalized: .block(L, .ln2Normalized))
            Kernels.linear(ln, rows: N, inFeatures: d, weight: w.upWeight, bias: w.upBias, outFeatures: ff, into: hidden, layout: rowLayout)
            try hook(.block(L, .mlpPre), hidden)
            activate(hidden, count: N * ff)
            try hook(.block(L, .mlpPost), hidden)
            Kernels.linear(hidden, rows: N, inFeatures: ff, weight: w.downWeight, bias: w.downBias, outFeatures: d, into: mlpOut, layout: rowLayout)
            try hook(.mlpOut(L), mlpOut)
            if cfg.parallelResidual {
                // x ← x + attn(ln1(x)) + mlp(ln2(x)): both branches read the same x.
                for i in 0..<(N * d) { x[i] = (mlpOut[i] + attnOut[i]) + x[i] }
            } else {
                // x ← mid + mlp(ln2(mid)).
                for i in 0..<(N * d) { x[i] = mlpOut[i] + x[i] }
            }
            try hook(.residPost(L), x)
            blockDone?(L)
        }
        guard plan.runsFinalNorm else { return result }

        // Final LayerNorm through its hooks; the unembedding (which applies its weight and bias) only where asked.
        do {
            let means = rowStatistics, scales = rowStatistics + N
            Kernels.layerNormNormalize(x, rows: N, width: d, eps: eps, into: ln, means: means, scales: scales)
            try hook(.lnFinalScale, scales)
            if edits.touches(.lnFinalScale) {
                for r in 0..<N { for i in 0..<d { ln[r * d + i] = (x[r * d + i] - means[r]) / scales[r] } }
            }
            try hook(.lnFinalNormalized, ln)
        }
        let normalized = UnsafeBufferPointer(start: UnsafePointer(ln), count: N * d)
        if wanted.contains(.logits) || plan.logits == .all {
            // Every position's logits: for the hook, for the request, or for both from one GEMM.
            var all = [Float](repeating: 0, count: N * V)
            try all.withUnsafeMutableBufferPointer { try unembed(normalizedHidden: normalized, rowCount: N, into: $0, layout: rowLayout) }
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
            let positions = lists.flatMap { $0 }
            var gathered = [Float](repeating: 0, count: rows.count * d)
            for (r, row) in rows.enumerated() { for i in 0..<d { gathered[r * d + i] = ln[row * d + i] } }
            var out = [Float](repeating: 0, count: rows.count * V)
            try gathered.withUnsafeBufferPointer { g in
                try out.withUnsafeMutableBufferPointer { try unembed(normalizedHidden: g, rowCount: rows.count, into: $0, layout: .positions(positions)) }
            }
            result.logits = Tensor(shape: [rows.count, V], data: out)
        }
        return result
    }

    /// Row indices into the flattened `[B·T]` positions, sequence by sequence, in the order listed.
    private static func flatRows(_ lists: [[Int]], length T: Int) -> [Int] {
        lists.enumerated().flatMap { b, list in list.map { b * T + $0 } }
    }

    /// Logits for `rowCount` rows of `ln_final.hook_normalized` (`[rowCount, d]`: normalised,
    /// before the final LayerNorm's weight and bias) into `into` (`[rowCount, V]`):
    /// `logits = (normalized·w + b) · embed_outᵀ`, the final LayerNorm's affine part applied here.
    /// Lets an evaluator unembed chunk by chunk instead of holding B·T·V floats. `layout` says
    /// where the rows sit in their sequences (default: one sequence from position 0); a row's
    /// logits are bit-identical whatever else the call holds, given its position (`Kernels.linear`).
    public func unembed(normalizedHidden rows: UnsafeBufferPointer<Float>, rowCount: Int,
                        into output: UnsafeMutableBufferPointer<Float>, layout: RowLayout? = nil) throws {
        guard let table = weights.unembedding else {
            throw NeoXError(.notLoaded, "unembed: the model was loaded without the unembedding (loadUnembedding: false)")
        }
        let d = config.hiddenSize, V = config.vocabSize
        guard rows.count >= rowCount * d, output.count >= rowCount * V else {
            throw NeoXError(.invalidRequest, "unembed: \(rowCount) rows need \(rowCount * d) inputs and \(rowCount * V) outputs, got \(rows.count) and \(output.count)")
        }
        guard rowCount > 0 else { return }
        var affine = Array(rows.prefix(rowCount * d))
        affine.withUnsafeMutableBufferPointer { y in
            Kernels.affine(y.baseAddress!, rows: rowCount, width: d, weight: weights.finalNormWeight, bias: weights.finalNormBias)
        }
        Kernels.withEngineThreads {
            table.withUnsafeBufferPointer { W in
                Kernels.linear(affine, rows: rowCount, inFeatures: d, weight: W.baseAddress!, bias: nil,
                               outFeatures: V, into: output.baseAddress!, layout: layout)
            }
        }
    }

    // MARK: Blocks

    /// Query rows handled per score block: scores for a block of queries are computed only against
    /// the keys they may see (0...last query), so the masked upper triangle is (almost) never computed.
    static let attentionQueryBlock = 128

    /// Multi-head causal self-attention of every (sequence, head) pair, written head-merged into
    /// `out` `[B·T, d]`. `qkv` is `[B·T, 3d]` with HF's per-head interleaving: head h's q, k, v are
    /// columns `[3·dh·h, 3·dh·h + dh)`, `+dh`, `+2dh`. Rotary is applied to q and k in place
    /// unless `rotated` says `applyRotary` already did.
    func causalSelfAttention(qkv: UnsafeMutablePointer<Float>, batch B: Int, length T: Int,
                             into out: UnsafeMutablePointer<Float>, queryBlock: Int, rotated: Bool = false) {
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
            if !rotated {
                rotary.apply(q, rows: T, stride: ld)
                rotary.apply(k, rows: T, stride: ld)
            }
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

    /// Rotates q and k of every (sequence, head) in place (`qkv` as in `causalSelfAttention`).
    func applyRotary(qkv: UnsafeMutablePointer<Float>, batch B: Int, length T: Int) {
        let H = config.numHeads, dh = config.headDim, ld = 3 * config.hiddenSize
        let rotary = self.rotary, shared = SharedPointer(qkv)
        Kernels.parallel(B * H) { item in
            let q = shared.base + (item / H) * T * ld + (item % H) * 3 * dh
            rotary.apply(q, rows: T, stride: ld)
            rotary.apply(q + dh, rows: T, stride: ld)
        }
    }

    /// Every attention score, `[B, H, T, T]`: `S[b, h, i, j] = q_i·k_j/√dh` for j ≤ i and −∞ for
    /// the masked j > i (TransformerLens's `IGNORE`), from rotated `qkv`.
    func attentionScores(qkv: UnsafePointer<Float>, batch B: Int, length T: Int, into scores: UnsafeMutablePointer<Float>) {
        let H = config.numHeads, dh = config.headDim, ld = 3 * config.hiddenSize
        let scale = Float(1 / Double(dh).squareRoot())
        let (source, target) = (SharedPointer(qkv), SharedPointer(scores))
        Kernels.parallel(B * H) { item in
            let q = source.readOnly + (item / H) * T * ld + (item % H) * 3 * dh, k = q + dh
            let S = target.base + item * T * T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(dh),
                        scale, q, Int32(ld), k, Int32(ld), 0, S, Int32(T))
            for i in 0..<T where i + 1 < T { (S + i * T + i + 1).update(repeating: -.infinity, count: T - i - 1) }
        }
    }

    /// Scores → pattern in place, row by row. `causal`: the scores are as `attentionScores` wrote
    /// them, so each row is the causal softmax `causalSelfAttention` computes; otherwise (edited
    /// scores) the softmax runs over every key as TransformerLens's does after its mask, and a row
    /// with no finite score becomes 0 (TransformerLens turns its NaNs into 0).
    func attentionPattern(_ matrices: UnsafeMutablePointer<Float>, batch B: Int, length T: Int, causal: Bool) {
        let H = config.numHeads, shared = SharedPointer(matrices)
        Kernels.parallel(B * H) { item in
            let S = shared.base + item * T * T
            for i in 0..<T {
                let row = S + i * T
                if causal { Kernels.causalSoftmaxRow(row, visible: i + 1, count: T); continue }
                let maxValue = Kernels.rowMax(row, count: T)
                guard maxValue.isFinite else { row.update(repeating: 0, count: T); continue }
                for j in 0..<T { row[j] = KernelMath.exp(row[j] - maxValue) }
                let inverse = 1 / Kernels.rowSum(row, count: T)
                for j in 0..<T { row[j] *= inverse }
            }
        }
    }

    /// `z = pattern · v` for every (sequence, head), head-merged into `out` `[B·T, d]`.
    func attentionMix(pattern: UnsafePointer<Float>, qkv: UnsafePointer<Float>, batch B: Int, length T: Int,
                      into out: UnsafeMutablePointer<Float>) {
        let H = config.numHeads, dh = config.headDim, d = config.hiddenSize, ld = 3 * d
        let (P, source, target) = (SharedPointer(pattern), SharedPointer(qkv), SharedPointer(out))
        Kernels.parallel(B * H) { item in
            let (b, h) = (item / H, item % H)
            let v = source.readOnly + b * T * ld + h * 3 * dh + 2 * dh
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(dh), Int32(T),
                        1, P.readOnly + item * T * T, Int32(T), v, Int32(ld), 0, target.base + b * T * d + h * dh, Int32(d))
        }
    }

    /// Each head's share of `dense` (TransformerLens's `hook_result`, `[rows, H, d]`):
    /// `result[r, h] = z[r, h] · W_O[:, h·dh ..< (h+1)·dh]ᵀ`, no bias. Batch-invariant as
    /// `Kernels.linear`: every `sgemm` has the same shape (`linearTileRows` rows of one head, each
    /// sequence tiled from its start, zero-padded), so a row's result does not depend on the other
    /// rows of the batch.
    func headResults(_ z: UnsafePointer<Float>, rows: Int, length T: Int, denseWeight: [Float], into result: UnsafeMutablePointer<Float>) {
        let H = config.numHeads, dh = config.headDim, d = config.hiddenSize
        let tile = Kernels.linearTileRows
        let tiles = LinearTiling(rows: rows, layout: .sequences(length: T), tileRows: tile).tiles
        let (source, target) = (SharedPointer(z), SharedPointer(result))
        denseWeight.withUnsafeBufferPointer { W in
            let weight = SharedPointer(W.baseAddress!)
            Kernels.parallel(H * tiles.count) { item in
                let (h, t) = (item % H, tiles[item / H])
                let input = UnsafeMutablePointer<Float>.allocate(capacity: tile * dh)
                let output = UnsafeMutablePointer<Float>.allocate(capacity: tile * d)
                defer { input.deallocate(); output.deallocate() }
                input.update(repeating: 0, count: tile * dh)
                for (row, slot) in zip(t.rows, t.slots) { (input + slot * dh).update(from: source.readOnly + row * d + h * dh, count: dh) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tile), Int32(d), Int32(dh),
                            1, input, Int32(dh), weight.readOnly + h * dh, Int32(d), 0, output, Int32(d))
                for (row, slot) in zip(t.rows, t.slots) { (target.base + (row * H + h) * d).update(from: output + slot * d, count: d) }
            }
        }
    }

    /// The MLP non-linearity over `count` values in place, split across the engine's threads.
    func activate(_ hidden: UnsafeMutablePointer<Float>, count total: Int) {
        let activation = self.activation
        let parts = min(Kernels.workers, max(1, total / 65536))
        let shared = SharedPointer(hidden)
        Kernels.parallel(parts) { part in
            let range = Kernels.slice(total, parts: parts, part: part)
            Kernels.activate(shared.base + range.lowerBound, count: range.count, activation)
        }
    }

    /// `dense_4h_to_h(act(dense_h_to_4h(input)))` for `rows` rows.
    func mlp(_ input: UnsafeMutablePointer<Float>, rows: Int, layer w: NeoXLayerWeights,
             hidden: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let d = config.hiddenSize, ff = config.intermediateSize
        Kernels.linear(input, rows: rows, inFeatures: d, weight: w.upWeight, bias: w.upBias, outFeatures: ff, into: hidden)
        activate(hidden, count: rows * ff)
        Kernels.linear(hidden, rows: rows, inFeatures: ff, weight: w.downWeight, bias: w.downBias, outFeatures: d, into: out)
    }
}
