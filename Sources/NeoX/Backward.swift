import CBLAS
import Formats
import Foundation

/// Receives one gradient while the backward pass is running: what it is, its shape and a view of
/// its values, valid only during the call. Gradients arrive top-down: the unembedding and final
/// LayerNorm first, then block by block from the last to the first, the embedding last.
public typealias GradientObserver = (_ gradient: GradientPoint, _ shape: [Int], _ values: UnsafeBufferPointer<Float>) throws -> Void

/// What `NeoXModel.backward` returns.
public struct BackwardResult: Sendable {
    /// Mean next-token cross-entropy over the scored positions (fp32 logits, log-softmax summed in Float64).
    public var loss: Double
    /// Scored positions.
    public var tokenCount: Int
    /// Requested gradients by name (HF parameter names, `…_grad` hook names); empty when observed.
    public var gradients: [String: Tensor]

    public subscript(_ point: GradientPoint) -> Tensor? { gradients[point.name] }
}

extension NeoXModel {
    /// Rows of logits the loss head holds at once (`rows × V` floats).
    static let lossChunkRows = 256

    /// The gradient of the mean next-token cross-entropy with respect to the parameters and
    /// activations `plan` asks for, computed exactly (no sampling, no approximation) in fp32.
    ///
    /// Memory: the forward keeps, per differentiated block, its input, its post-rotary QKV, its
    /// head-merged attention output and its MLP pre-activation (plus `resid_mid` for a sequential
    /// block); everything else (LayerNorm outputs, attention probabilities, GELU outputs) is
    /// recomputed block by block during the backward. See the README for the peak-memory formula.
    ///
    /// - Parameters:
    ///   - tokens: B sequences of T token ids (the model input).
    ///   - targets: what each input position predicts (`LossTargets.labels` / `.shifted`).
    ///   - plan: the gradients to keep (`GradientPlan.all(for:)` for everything).
    ///   - observer: if given, each gradient is handed to it as soon as it is complete and is NOT
    ///     stored in the result, so at most one block's parameter gradients exist at a time.
    public func backward(tokens: [[Int32]], targets: LossTargets, plan: GradientPlan,
                         observer: GradientObserver? = nil) throws -> BackwardResult {
        try backward(tokens: tokens, targets: targets, plan: plan, queryBlock: Self.attentionQueryBlock, observer: observer)
    }

    /// `backward` with the attention's query block chosen (tests run several blocks on short sequences).
    func backward(tokens: [[Int32]], targets: LossTargets, plan: GradientPlan, queryBlock: Int,
                  observer: GradientObserver? = nil) throws -> BackwardResult {
        try Kernels.withEngineThreads {
            try runBackward(tokens: tokens, targets: targets, plan: plan, queryBlock: queryBlock, observer: observer)
        }
    }

    /// The loss alone: the forward pass and the loss head, no gradient.
    public func loss(tokens: [[Int32]], targets: LossTargets) throws -> (loss: Double, tokenCount: Int) {
        let result = try backward(tokens: tokens, targets: targets,
                                  plan: GradientPlan(config: config, parameters: [], hooks: []))
        return (result.loss, result.tokenCount)
    }

    private func runBackward(tokens: [[Int32]], targets: LossTargets, plan: GradientPlan, queryBlock block: Int,
                             observer: GradientObserver?) throws -> BackwardResult {
        let (B, T) = try validate(tokens: tokens)
        let cfg = config
        let N = B * T, d = cfg.hiddenSize, ff = cfg.intermediateSize, V = cfg.vocabSize, layerCount = cfg.numLayers
        guard loadedLayers == layerCount, let unembedding = weights.unembedding else {
            throw NeoXError(.notLoaded, "backward needs every block and the unembedding; the model was loaded with \(loadedLayers) of \(layerCount) blocks\(hasUnembedding ? "" : " and without the unembedding")")
        }
        guard targets.ids.count == B, targets.ids.allSatisfy({ $0.count == T }) else {
            throw NeoXError(.invalidRequest, "loss targets must be \(B)×\(T) like the tokens, got \(targets.ids.count) rows of \(targets.ids.map(\.count))")
        }
        var scored: [(row: Int, target: Int)] = []
        for (b, row) in targets.ids.enumerated() {
            for (t, id) in row.enumerated() where id >= 0 {
                guard Int(id) < V else {
                    throw NeoXError(.invalidInput, "target id \(id) at sequence \(b), position \(t) is out of range: vocab_size is \(V)")
                }
                scored.append((b * T + t, Int(id)))
            }
        }
        guard !scored.isEmpty else { throw NeoXError(.invalidRequest, "the loss scores no position (every target is -1)") }

        let parallelResidual = cfg.parallelResidual, eps = Float(cfg.layerNormEps)
        let wanted = Set(plan.parameters), wantedHooks = Set(plan.hooks)
        let first = plan.lowestLayer
        var result = BackwardResult(loss: 0, tokenCount: scored.count, gradients: [:])

        func emit(_ point: GradientPoint, _ buffer: UnsafePointer<Float>, shape: [Int]) throws {
            let view = UnsafeBufferPointer(start: buffer, count: shape.reduce(1, *))
            if let observer { try observer(point, shape, view) } else { result.gradients[point.name] = Tensor(shape: shape, data: Array(view)) }
        }
        func emit(_ hook: HookPoint, _ buffer: UnsafePointer<Float>) throws {
            if wantedHooks.contains(hook) { try emit(.activation(hook), buffer, shape: [B, T, d]) }
        }

        // The tape: what the backward of block L ≥ first reads, written by the forward.
        let tapeWidth = d + 3 * d + d + ff + (parallelResidual ? 0 : d)
        let tape = UnsafeMutablePointer<Float>.allocate(capacity: max(0, layerCount - first) * N * tapeWidth)
        defer { tape.deallocate() }
        func tapeInput(_ L: Int) -> UnsafeMutablePointer<Float> { tape + (L - first) * N * tapeWidth }   // resid_pre [N, d]
        func tapeQKV(_ L: Int) -> UnsafeMutablePointer<Float> { tapeInput(L) + N * d }                  // post-rotary [N, 3d]
        func tapeHeads(_ L: Int) -> UnsafeMutablePointer<Float> { tapeInput(L) + 4 * N * d }            // heads merged [N, d]
        func tapeUp(_ L: Int) -> UnsafeMutablePointer<Float> { tapeInput(L) + 5 * N * d }               // MLP pre-activation [N, ff]
        func tapeMid(_ L: Int) -> UnsafeMutablePointer<Float> { tapeUp(L) + N * ff }                    // resid_mid [N, d] (sequential)

        // Working buffers, allocated once; the backward reuses the forward's.
        let queryBlock = max(1, min(T, block))
        let x = UnsafeMutablePointer<Float>.allocate(capacity: N * d)        // residual stream; later a gradient
        let ln = UnsafeMutablePointer<Float>.allocate(capacity: N * d)       // LayerNorm output (recomputed in backward)
        let qkv = UnsafeMutablePointer<Float>.allocate(capacity: N * 3 * d)  // untaped QKV; later dQKV
        let heads = UnsafeMutablePointer<Float>.allocate(capacity: N * d)    // untaped heads; later the residual's gradient
        let attnOut = UnsafeMutablePointer<Float>.allocate(capacity: N * d)  // later d(heads)
        let hidden = UnsafeMutablePointer<Float>.allocate(capacity: N * ff)  // MLP inner (recomputed in backward)
        let mlpOut = UnsafeMutablePointer<Float>.allocate(capacity: N * d)   // later d(LayerNorm output)
        let dHidden = UnsafeMutablePointer<Float>.allocate(capacity: first < layerCount ? N * ff : 0)
        defer { for p in [x, ln, qkv, heads, attnOut, hidden, mlpOut, dHidden] { p.deallocate() } }

        // MARK: Forward, writing the tape

        for b in 0..<B { for t in 0..<T { weights.embedding.copyRow(Int(tokens[b][t]), into: x + (b * T + t) * d) } }
        let rowLayout = RowLayout.sequences(length: T)   // the forward's tiles (`Kernels.linear`)
        let forwardBlocks = BlockStream(weights: weights, order: Array(0..<layerCount))
        for L in 0..<layerCount {
            let w = try forwardBlocks.next(), taped = L >= first
            if taped { tapeInput(L).update(from: x, count: N * d) }
            let q = taped ? tapeQKV(L) : qkv, o = taped ? tapeHeads(L) : heads, up = taped ? tapeUp(L) : hidden
            Kernels.layerNorm(x, rows: N, width: d, weight: w.ln1Weight, bias: w.ln1Bias, eps: eps, into: ln)
            Kernels.linear(ln, rows: N, inFeatures: d, weight: w.qkvWeight, bias: w.qkvBias, outFeatures: 3 * d, into: q, layout: rowLayout)
            causalSelfAttention(qkv: q, batch: B, length: T, into: o, queryBlock: queryBlock)
            Kernels.linear(o, rows: N, inFeatures: d, weight: w.denseWeight, bias: w.denseBias, outFeatures: d, into: attnOut, layout: rowLayout)
            if !parallelResidual {
                for i in 0..<(N * d) { x[i] = attnOut[i] + x[i] }
                if taped { tapeMid(L).update(from: x, count: N * d) }
            }
            Kernels.layerNorm(x, rows: N, width: d, weight: w.ln2Weight, bias: w.ln2Bias, eps: eps, into: ln)
            Kernels.linear(ln, rows: N, inFeatures: d, weight: w.upWeight, bias: w.upBias, outFeatures: ff, into: up, layout: rowLayout)
            if up != hidden { hidden.update(from: up, count: N * ff) }
            activateInParallel(hidden, count: N * ff)
            Kernels.linear(hidden, rows: N, inFeatures: ff, weight: w.downWeight, bias: w.downBias, outFeatures: d, into: mlpOut, layout: rowLayout)
            if parallelResidual {
                for i in 0..<(N * d) { x[i] = (mlpOut[i] + attnOut[i]) + x[i] }
            } else {
                for i in 0..<(N * d) { x[i] = mlpOut[i] + x[i] }
            }
        }
        // x is now the final residual; the final LayerNorm's output goes through the loss head.
        let finalOut = hidden   // [N, d] fits in [N, ff]
        Kernels.layerNorm(x, rows: N, width: d, weight: weights.finalNormWeight, bias: weights.finalNormBias, eps: eps, into: finalOut)

        // MARK: Loss head: logits → log-softmax → cross-entropy, and its gradient, chunk by chunk

        let unembeddingName = cfg.tieWordEmbeddings ? "gpt_neox.embed_in.weight" : "embed_out.weight"
        let wantsUnembedding = wanted.contains(unembeddingName)
        let wantsFinalNorm = wanted.contains("gpt_neox.final_layer_norm.weight") || wanted.contains("gpt_neox.final_layer_norm.bias")
        let needsHiddenGradient = first < layerCount || wantsFinalNorm || wantedHooks.contains(.lnFinalNormalized)
        let dUnembedding = UnsafeMutablePointer<Float>.allocate(capacity: wantsUnembedding ? V * d : 0)
        defer { dUnembedding.deallocate() }
        dUnembedding.initialize(repeating: 0, count: wantsUnembedding ? V * d : 0)
        let dFinalOut = ln   // d(ln_final output) [N, d]
        dFinalOut.initialize(repeating: 0, count: N * d)

        let chunk = min(scored.count, Self.lossChunkRows)
        let gathered = UnsafeMutablePointer<Float>.allocate(capacity: 2 * chunk * d)
        let dGathered = gathered + chunk * d
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: chunk * V)
        var rowLoss = [Double](repeating: 0, count: chunk)
        defer { gathered.deallocate(); logits.deallocate() }
        var lossSum = 0.0
        let inverseCount = 1 / Double(scored.count)
        var start = 0
        while start < scored.count {
            let rows = min(chunk, scored.count - start)
            let batchRows = Array(scored[start..<(start + rows)])
            for (r, item) in batchRows.enumerated() { (gathered + r * d).update(from: finalOut + item.row * d, count: d) }
            unembedding.withUnsafeBufferPointer { W in
                Kernels.linear(gathered, rows: rows, inFeatures: d, weight: W.baseAddress!, bias: nil, outFeatures: V, into: logits,
                               layout: .positions(batchRows.map { $0.row % T }))
            }
            // Each row becomes its cross-entropy gradient (softmax − one-hot) / count.
            rowLoss.withUnsafeMutableBufferPointer { lossBuffer in
                let (ls, lb) = (SharedPointer(logits), SharedPointer(lossBuffer.baseAddress!))
                let parts = min(Kernels.workers, rows)
                Kernels.parallel(parts) { part in
                    for r in Kernels.slice(rows, parts: parts, part: part) {
                        lb.base[r] = Self.crossEntropyGradient(ls.base + r * V, count: V, target: batchRows[r].target, scale: inverseCount)
                    }
                }
            }
            for r in 0..<rows { lossSum += rowLoss[r] }
            if wantsUnembedding {
                Kernels.weightGradient(logits, gathered, rows: rows, outFeatures: V, inFeatures: d, into: dUnembedding)
            }
            if needsHiddenGradient {
                unembedding.withUnsafeBufferPointer { W in
                    Kernels.inputGradient(logits, rows: rows, outFeatures: V, weight: W.baseAddress!, inFeatures: d,
                                          into: dGathered, accumulate: false)
                }
                for (r, item) in batchRows.enumerated() {
                    let target = dFinalOut + item.row * d, source = dGathered + r * d
                    for i in 0..<d { target[i] += source[i] }
                }
            }
            start += rows
        }
        result.loss = lossSum * inverseCount
        if wantsUnembedding && !cfg.tieWordEmbeddings { try emit(.parameter("embed_out.weight"), dUnembedding, shape: [V, d]) }
        guard needsHiddenGradient else { return result }

        // MARK: Final LayerNorm

        // Parameter gradients of one block (or of the final LayerNorm), reused block after block.
        let grads = BlockGradientBuffers(config: cfg)
        defer { grads.deallocate() }
        if wantedHooks.contains(.lnFinalNormalized) {
            // ln_final.hook_normalized is before the final LayerNorm's weight: its gradient is d(output)·w.
            var dNormalized = [Float](repeating: 0, count: N * d)
            for r in 0..<N { for i in 0..<d { dNormalized[r * d + i] = dFinalOut[r * d + i] * weights.finalNormWeight[i] } }
            try dNormalized.withUnsafeBufferPointer { try emit(.lnFinalNormalized, $0.baseAddress!) }
        }
        // gradient: d(block output), in `heads`; dx (in `x`) still holds the final residual the
        // final LayerNorm read, and becomes the second gradient buffer once that is consumed.
        var gradient = heads, dx = x
        gradient.initialize(repeating: 0, count: N * d)
        grads.zero()
        Kernels.layerNormBackward(dx, rows: N, width: d, weight: weights.finalNormWeight, eps: eps,
                                  outputGradient: dFinalOut, addingInto: gradient,
                                  weightGradient: grads.ln1Weight, biasGradient: grads.ln1Bias)
        for (name, pointer) in [("gpt_neox.final_layer_norm.weight", grads.ln1Weight), ("gpt_neox.final_layer_norm.bias", grads.ln1Bias)]
        where wanted.contains(name) {
            try emit(.parameter(name), pointer, shape: [d])
        }

        // MARK: Blocks, last to first

        let dQKV = qkv, dHeads = attnOut, dLN = mlpOut
        forwardBlocks.finish()   // its two buffers serve the backward
        let backwardBlocks = BlockStream(weights: weights, order: Array(stride(from: layerCount - 1, through: first, by: -1)))
        for L in stride(from: layerCount - 1, through: first, by: -1) {
            let w = try backwardBlocks.next(), prefix = "gpt_neox.layers.\(L)."
            func wants(_ suffix: String) -> Bool { wanted.contains(prefix + suffix) }
            grads.zero()
            try emit(.residPost(L), gradient)

            // MLP: out = down(act(up(ln2(m)))), m = resid_pre (parallel) or resid_mid (sequential).
            let mlpInput = parallelResidual ? tapeInput(L) : tapeMid(L)
            try emit(.mlpOut(L), gradient)
            Kernels.layerNorm(mlpInput, rows: N, width: d, weight: w.ln2Weight, bias: w.ln2Bias, eps: eps, into: ln)
            hidden.update(from: tapeUp(L), count: N * ff)
            activateInParallel(hidden, count: N * ff)
            if wants("mlp.dense_4h_to_h.weight") { Kernels.weightGradient(gradient, hidden, rows: N, outFeatures: d, inFeatures: ff, into: grads.downWeight) }
            if wants("mlp.dense_4h_to_h.bias") { Kernels.columnSums(gradient, rows: N, width: d, into: grads.downBias) }
            Kernels.inputGradient(gradient, rows: N, outFeatures: d, weight: w.downWeight, inFeatures: ff, into: dHidden, accumulate: false)
            activationBackwardInParallel(tapeUp(L), gradient: dHidden, count: N * ff)
            if wants("mlp.dense_h_to_4h.weight") { Kernels.weightGradient(dHidden, ln, rows: N, outFeatures: ff, inFeatures: d, into: grads.upWeight) }
            if wants("mlp.dense_h_to_4h.bias") { Kernels.columnSums(dHidden, rows: N, width: ff, into: grads.upBias) }
            Kernels.inputGradient(dHidden, rows: N, outFeatures: ff, weight: w.upWeight, inFeatures: d, into: dLN, accumulate: false)
            // dx = d(out) + LN2ᵀ(…): for a sequential block this is d(resid_mid).
            dx.update(from: gradient, count: N * d)
            Kernels.layerNormBackward(mlpInput, rows: N, width: d, weight: w.ln2Weight, eps: eps, outputGradient: dLN, addingInto: dx,
                                      weightGradient: wants("post_attention_layernorm.weight") ? grads.ln2Weight : nil,
                                      biasGradient: wants("post_attention_layernorm.bias") ? grads.ln2Bias : nil)

            // Attention: out = dense(attention(rotary(qkv(ln1(x))))).
            let dAttention = parallelResidual ? gradient : dx
            if !parallelResidual { try emit(.residMid(L), dx) }
            try emit(.attnOut(L), dAttention)
            if wants("attention.dense.weight") { Kernels.weightGradient(dAttention, tapeHeads(L), rows: N, outFeatures: d, inFeatures: d, into: grads.denseWeight) }
            if wants("attention.dense.bias") { Kernels.columnSums(dAttention, rows: N, width: d, into: grads.denseBias) }
            Kernels.inputGradient(dAttention, rows: N, outFeatures: d, weight: w.denseWeight, inFeatures: d, into: dHeads, accumulate: false)
            causalSelfAttentionBackward(qkv: tapeQKV(L), out: tapeHeads(L), outputGradient: dHeads, batch: B, length: T,
                                        into: dQKV, queryBlock: queryBlock)
            Kernels.layerNorm(tapeInput(L), rows: N, width: d, weight: w.ln1Weight, bias: w.ln1Bias, eps: eps, into: ln)
            if wants("attention.query_key_value.weight") { Kernels.weightGradient(dQKV, ln, rows: N, outFeatures: 3 * d, inFeatures: d, into: grads.qkvWeight) }
            if wants("attention.query_key_value.bias") { Kernels.columnSums(dQKV, rows: N, width: 3 * d, into: grads.qkvBias) }
            Kernels.inputGradient(dQKV, rows: N, outFeatures: 3 * d, weight: w.qkvWeight, inFeatures: d, into: dLN, accumulate: false)
            Kernels.layerNormBackward(tapeInput(L), rows: N, width: d, weight: w.ln1Weight, eps: eps, outputGradient: dLN, addingInto: dx,
                                      weightGradient: wants("input_layernorm.weight") ? grads.ln1Weight : nil,
                                      biasGradient: wants("input_layernorm.bias") ? grads.ln1Bias : nil)
            swap(&gradient, &dx)   // gradient = d(resid_pre L) = d(resid_post L−1)

            for (suffix, pointer, shape) in grads.named(config: cfg) where wants(suffix) {
                try emit(.parameter(prefix + suffix), pointer, shape: shape)
            }
            try emit(.residPre(L), gradient)
        }

        // MARK: Embedding: only the rows the batch touched receive gradient (plus the tied unembedding's).

        if first == 0 && wanted.contains("gpt_neox.embed_in.weight") {
            let table = UnsafeMutablePointer<Float>.allocate(capacity: V * d)
            defer { table.deallocate() }
            if cfg.tieWordEmbeddings { table.initialize(from: dUnembedding, count: V * d) } else { table.initialize(repeating: 0, count: V * d) }
            var touched: [Int: [Double]] = [:]
            for n in 0..<N {
                let id = Int(tokens[n / T][n % T]), row = gradient + n * d
                touched[id, default: [Double](repeating: 0, count: d)].withUnsafeMutableBufferPointer { sum in
                    for i in 0..<d { sum[i] += Double(row[i]) }
                }
            }
            for (id, sum) in touched { for i in 0..<d { table[id * d + i] += Float(sum[i]) } }
            try emit(.parameter("gpt_neox.embed_in.weight"), table, shape: [V, d])
        }
        return result
    }

    /// Turns one row of logits into its cross-entropy gradient `(softmax − onehot(target))·scale`
    /// in place and returns the row's loss `log Σ exp − logit[target]`. Exponentials in fp32, summed
    /// in Float64 over blocks (as `LogSoftmax.summarize`).
    static func crossEntropyGradient(_ row: UnsafeMutablePointer<Float>, count: Int, target: Int, scale: Double) -> Double {
        let maxLogit = Kernels.rowMax(row, count: count)
        let targetLogit = row[target]
        var total = 0.0, start = 0
        while start < count {
            let length = min(LogSoftmax.blockLength, count - start), block = row + start
            for j in 0..<length { block[j] = KernelMath.exp(block[j] - maxLogit) }
            total += Double(Kernels.rowSum(block, count: length))
            start += length
        }
        let factor = Float(scale / total)
        for j in 0..<count { row[j] *= factor }
        row[target] -= Float(scale)
        return Double(maxLogit) + Foundation.log(total) - Double(targetLogit)
    }

    /// The MLP non-linearity over `count` values in place, split across workers as the forward does.
    func activateInParallel(_ values: UnsafeMutablePointer<Float>, count: Int) {
        let activation = self.activation, parts = min(Kernels.workers, max(1, count / 65536))
        let shared = SharedPointer(values)
        Kernels.parallel(parts) { part in
            let range = Kernels.slice(count, parts: parts, part: part)
            Kernels.activate(shared.base + range.lowerBound, count: range.count, activation)
        }
    }

    /// `gradient *= act'(pre)` over `count` values, split across workers.
    func activationBackwardInParallel(_ pre: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>, count: Int) {
        let activation = self.activation, parts = min(Kernels.workers, max(1, count / 65536))
        let (ps, gs) = (SharedPointer(pre), SharedPointer(gradient))
        Kernels.parallel(parts) { part in
            let range = Kernels.slice(count, parts: parts, part: part)
            Kernels.activationBackward(ps.readOnly + range.lowerBound, gradient: gs.base + range.lowerBound, count: range.count, activation)
        }
    }
}

/// One block's parameter gradients as raw buffers, allocated once and zeroed per block.
struct BlockGradientBuffers {
    let storage: UnsafeMutablePointer<Float>
    let count: Int
    let ln1Weight, ln1Bias, ln2Weight, ln2Bias, qkvWeight, qkvBias, denseWeight, denseBias: UnsafeMutablePointer<Float>
    let upWeight, upBias, downWeight, downBias: UnsafeMutablePointer<Float>

    init(config: NeoXConfig) {
        let d = config.hiddenSize, ff = config.intermediateSize
        let sizes = [d, d, d, d, 3 * d * d, 3 * d, d * d, d, ff * d, ff, d * ff, d]
        count = sizes.reduce(0, +)
        let base = UnsafeMutablePointer<Float>.allocate(capacity: count)
        storage = base
        var p: [UnsafeMutablePointer<Float>] = [], running = 0
        for s in sizes { p.append(base + running); running += s }
        (ln1Weight, ln1Bias, ln2Weight, ln2Bias) = (p[0], p[1], p[2], p[3])
        (qkvWeight, qkvBias, denseWeight, denseBias) = (p[4], p[5], p[6], p[7])
        (upWeight, upBias, downWeight, downBias) = (p[8], p[9], p[10], p[11])
    }

    func zero() { storage.initialize(repeating: 0, count: count) }
    func deallocate() { storage.deallocate() }

    /// (name suffix, buffer, shape) in HF order, attention biases only when the model has them.
    func named(config: NeoXConfig) -> [(String, UnsafeMutablePointer<Float>, [Int])] {
        let d = config.hiddenSize, ff = config.intermediateSize
        var list: [(String, UnsafeMutablePointer<Float>, [Int])] = [
            ("input_layernorm.weight", ln1Weight, [d]), ("input_layernorm.bias", ln1Bias, [d]),
            ("post_attention_layernorm.weight", ln2Weight, [d]), ("post_attention_layernorm.bias", ln2Bias, [d]),
            ("attention.query_key_value.weight", qkvWeight, [3 * d, d])]
        if config.attentionBias { list.append(("attention.query_key_value.bias", qkvBias, [3 * d])) }
        list.append(("attention.dense.weight", denseWeight, [d, d]))
        if config.attentionBias { list.append(("attention.dense.bias", denseBias, [d])) }
        list += [("mlp.dense_h_to_4h.weight", upWeight, [ff, d]), ("mlp.dense_h_to_4h.bias", upBias, [ff]),
                 ("mlp.dense_4h_to_h.weight", downWeight, [d, ff]), ("mlp.dense_4h_to_h.bias", downBias, [d])]
        return list
    }
}
