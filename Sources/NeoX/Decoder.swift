import CBLAS
import Formats
import Foundation

/// The new tokens of one sequence within a `Decoder.feed` call: rows `row..<row + count` of the
/// flattened `[N, d]` activations, at positions `position..<position + count` of sequence `sequence`.
public struct FedSegment: Sendable, Equatable {
    public var sequence: Int
    public var position: Int
    public var count: Int
    public var row: Int
}

/// Receives one activation of a `Decoder.feed` call: its hook, the segments its rows belong to,
/// and its values `[N, d]` (`logits`: `[N, V]`), N = Σ segment counts; valid only during the call.
public typealias DecoderObserver = (_ hook: HookPoint, _ segments: [FedSegment], _ values: UnsafeBufferPointer<Float>) throws -> Void

/// Incremental decoding: runs new tokens of each sequence of a batch through the model, attending
/// to the keys and values of everything fed before (kept in a `KVCache`), with the kernels and
/// arithmetic of `NeoXModel.forward`, so the logits of position t equal the full forward's at t
/// (to float rounding of the differently-shaped products).
///
/// Each sequence keeps its own positions: a batch of prompts of different lengths is fed as one
/// ragged set of rows (no padding tokens, no attention mask), and rotary uses each token's true
/// position within its own sequence. (HF's batched `generate` left-pads and shifts positions,
/// which changes GPT-NeoX's outputs; this decoder has nothing to shift.)
///
/// Not thread-safe: one decoder per thread. The model itself is shared and immutable.
public final class Decoder {
    public let model: NeoXModel
    public let cache: KVCache
    /// Working buffers, grown when a call feeds more rows than any before.
    private var workspace: Workspace
    /// The last-row logits of one call, `[batch, V]`, reused by every call.
    private let logitsBuffer: UnsafeMutablePointer<Float>

    /// - Parameters:
    ///   - batch: number of sequences.
    ///   - capacity: positions per sequence (prompt + generated), at most `max_position_embeddings`.
    public init(model: NeoXModel, batch: Int, capacity: Int) throws {
        let cfg = model.config
        guard model.loadedLayers == cfg.numLayers else {
            throw NeoXError(.notLoaded, "decoding needs every block, but the model was loaded with \(model.loadedLayers) of \(cfg.numLayers)")
        }
        guard model.hasUnembedding else {
            throw NeoXError(.notLoaded, "decoding needs logits, but the model was loaded without the unembedding")
        }
        guard batch >= 1 else { throw NeoXError(.invalidRequest, "a decoder needs at least one sequence, got \(batch)") }
        guard capacity >= 1, capacity <= cfg.maxPositionEmbeddings else {
            throw NeoXError(.invalidRequest, "decoder capacity \(capacity) must lie in 1...\(cfg.maxPositionEmbeddings) (max_position_embeddings)")
        }
        self.model = model
        cache = KVCache(layers: cfg.numLayers, batch: batch, heads: cfg.numHeads, headDim: cfg.headDim, capacity: capacity)
        workspace = Workspace(rows: 0, config: cfg)
        logitsBuffer = .allocate(capacity: batch * cfg.vocabSize)
    }

    deinit { logitsBuffer.deallocate() }

    /// Positions already fed, per sequence.
    public var lengths: [Int] { cache.lengths }

    /// The hooks `feed` can capture: the residual-stream sites, `ln_final.hook_normalized` and `logits`.
    public static func canCapture(_ point: HookPoint) -> Bool {
        switch point {
        case .block(_, let site): return site.isResidual
        case .lnFinalNormalized, .logits: return true
        case .embed, .lnFinalScale: return false
        }
    }

    /// Runs `tokens[b]` (possibly empty) as the next positions of sequence b, appends their keys
    /// and values to the cache, and returns, for each sequence fed at least one token, the logits
    /// `[V]` at its last new position (nil for sequences fed nothing, or for all when
    /// `logits` is false).
    ///
    /// - Parameter observer: receives the hooks of `capture` for the fed rows as they are computed.
    public func feed(_ tokens: [[Int32]], logits wantLogits: Bool = true, capture: [HookPoint] = [],
                     observer: DecoderObserver? = nil) throws -> [[Float]?] {
        let cfg = model.config
        guard tokens.count == cache.batch else {
            throw NeoXError(.invalidRequest, "feed: \(tokens.count) token lists for a decoder of \(cache.batch) sequences")
        }
        var segments: [FedSegment] = []
        var rows = 0
        for (b, list) in tokens.enumerated() where !list.isEmpty {
            let start = cache.lengths[b]
            guard start + list.count <= cache.capacity else {
                throw NeoXError(.invalidInput, "sequence \(b) would reach \(start + list.count) positions, beyond the decoder's capacity of \(cache.capacity)")
            }
            for (t, id) in list.enumerated() where id < 0 || Int(id) >= cfg.vocabSize {
                throw NeoXError(.invalidInput, "token id \(id) at sequence \(b), position \(start + t) is out of range: vocab_size is \(cfg.vocabSize) (valid ids 0..<\(cfg.vocabSize))")
            }
            segments.append(FedSegment(sequence: b, position: start, count: list.count, row: rows))
            rows += list.count
        }
        var result = [[Float]?](repeating: nil, count: cache.batch)
        guard rows > 0 else { return result }
        let wanted = Set(capture)
        if workspace.rows < rows { workspace = Workspace(rows: rows, config: cfg) }
        try Kernels.withEngineThreads {
            try run(tokens: tokens, segments: segments, rows: rows, wanted: wanted, observer: observer)
            if wantLogits || wanted.contains(.logits) {
                try finish(segments: segments, rows: rows, wanted: wanted, observer: observer, into: &result, keep: wantLogits)
            }
        }
        for segment in segments { cache.lengths[segment.sequence] += segment.count }
        return result
    }

    /// The blocks, row by row exactly as `NeoXModel.run` does them, on the ragged rows; then the final LayerNorm.
    private func run(tokens: [[Int32]], segments: [FedSegment], rows N: Int, wanted: Set<HookPoint>,
                     observer: DecoderObserver?) throws {
        let cfg = model.config, weights = model.weights
        let d = cfg.hiddenSize
        let ws = workspace
        let x = ws.x, ln = ws.ln, qkv = ws.qkv, heads = ws.heads, attnOut = ws.attnOut, hidden = ws.hidden, mlpOut = ws.mlpOut
        func emit(_ point: HookPoint, _ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
            guard wanted.contains(point), let observer else { return }
            try observer(point, segments, UnsafeBufferPointer(start: buffer, count: count))
        }

        for segment in segments {
            for t in 0..<segment.count {
                weights.embedding.copyRow(Int(tokens[segment.sequence][t]), into: x + (segment.row + t) * d)
            }
        }
        let eps = Float(cfg.layerNormEps)
        let blocks = BlockStream(weights: weights, order: Array(0..<cfg.numLayers))
        for L in 0..<cfg.numLayers {
            let w = try blocks.next()
            try emit(.residPre(L), x, count: N * d)
            Kernels.layerNorm(x, rows: N, width: d, weight: w.ln1Weight, bias: w.ln1Bias, eps: eps, into: ln)
            Self.project(ln, rows: N, inFeatures: d, weight: w.qkvWeight, bias: w.qkvBias, outFeatures: 3 * d, into: qkv)
            cachedAttention(layer: L, qkv: qkv, segments: segments, into: heads)
            Self.project(heads, rows: N, inFeatures: d, weight: w.denseWeight, bias: w.denseBias, outFeatures: d, into: attnOut)
            try emit(.attnOut(L), attnOut, count: N * d)
            if cfg.parallelResidual {
                Kernels.layerNorm(x, rows: N, width: d, weight: w.ln2Weight, bias: w.ln2Bias, eps: eps, into: ln)
                mlp(ln, rows: N, layer: w, hidden: hidden, into: mlpOut)
                try emit(.mlpOut(L), mlpOut, count: N * d)
                for i in 0..<(N * d) { x[i] = (mlpOut[i] + attnOut[i]) + x[i] }
            } else {
                for i in 0..<(N * d) { x[i] = attnOut[i] + x[i] }
                try emit(.residMid(L), x, count: N * d)
                Kernels.layerNorm(x, rows: N, width: d, weight: w.ln2Weight, bias: w.ln2Bias, eps: eps, into: ln)
                mlp(ln, rows: N, layer: w, hidden: hidden, into: mlpOut)
                try emit(.mlpOut(L), mlpOut, count: N * d)
                for i in 0..<(N * d) { x[i] = mlpOut[i] + x[i] }
            }
            try emit(.residPost(L), x, count: N * d)
        }
        // ln_final.hook_normalized is the LayerNorm before its weight and bias (TransformerLens 3.x).
        Kernels.layerNormNormalize(x, rows: N, width: d, eps: eps, into: ln)
        try emit(.lnFinalNormalized, ln, count: N * d)
        Kernels.affine(ln, rows: N, width: d, weight: weights.finalNormWeight, bias: weights.finalNormBias)
    }

    /// Logits: of every fed row when the `logits` hook is captured, else only of each segment's last row.
    private func finish(segments: [FedSegment], rows N: Int, wanted: Set<HookPoint>, observer: DecoderObserver?,
                        into result: inout [[Float]?], keep: Bool) throws {
        let cfg = model.config
        let d = cfg.hiddenSize, V = cfg.vocabSize
        guard let table = model.weights.unembedding else { return }
        let ln = workspace.ln
        if wanted.contains(.logits) {
            var all = [Float](repeating: 0, count: N * V)
            table.withUnsafeBufferPointer { W in
                all.withUnsafeMutableBufferPointer { out in
                    Kernels.linear(ln, rows: N, inFeatures: d, weight: W.baseAddress!, bias: nil, outFeatures: V, into: out.baseAddress!)
                }
            }
            if let observer { try all.withUnsafeBufferPointer { try observer(.logits, segments, $0) } }
            if keep {
                for s in segments {
                    let last = s.row + s.count - 1
                    result[s.sequence] = Array(all[(last * V)..<((last + 1) * V)])
                }
            }
            return
        }
        // Only the last row of each segment goes through the unembedding.
        let gathered = UnsafeMutablePointer<Float>.allocate(capacity: segments.count * d)
        defer { gathered.deallocate() }
        for (i, s) in segments.enumerated() { (gathered + i * d).update(from: ln + (s.row + s.count - 1) * d, count: d) }
        let out = logitsBuffer
        table.withUnsafeBufferPointer { W in
            Self.project(gathered, rows: segments.count, inFeatures: d, weight: W.baseAddress!, bias: nil, outFeatures: V, into: out)
        }
        for (i, s) in segments.enumerated() { result[s.sequence] = Array(UnsafeBufferPointer(start: out + i * V, count: V)) }
    }

    /// Causal self-attention of the fed rows against the cache: for each (segment, head), rotary
    /// at the rows' own positions, the new keys and values appended to the cache, then
    /// `softmax(q·Kᵀ/√dh)·V` over positions `0...p` for the query at position p, blocked by queries
    /// as in `causalSelfAttention`.
    private func cachedAttention(layer L: Int, qkv: UnsafeMutablePointer<Float>, segments: [FedSegment],
                                 into out: UnsafeMutablePointer<Float>) {
        let cfg = model.config
        let H = cfg.numHeads, dh = cfg.headDim, d = cfg.hiddenSize, ld = 3 * d
        let scale = Float(1 / Double(dh).squareRoot())
        let rotary = model.rotary, cache = self.cache
        let queryBlock = NeoXModel.attentionQueryBlock
        let sharedQKV = SharedPointer(qkv), sharedOut = SharedPointer(out)
        let sharedKeys = SharedPointer(cache.keys), sharedValues = SharedPointer(cache.values)
        let offsets = segments.flatMap { s in (0..<H).map { cache.offset(layer: L, sequence: s.sequence, head: $0) } }
        Kernels.parallel(segments.count * H) { item in
            let s = segments[item / H], h = item % H
            let p = s.position, n = s.count
            let q = sharedQKV.base + s.row * ld + h * 3 * dh, k = q + dh, v = q + 2 * dh
            let o = sharedOut.base + s.row * d + h * dh
            let K = sharedKeys.base + offsets[item], Vc = sharedValues.base + offsets[item]
            rotary.apply(q, rows: n, stride: ld, firstPosition: p)
            rotary.apply(k, rows: n, stride: ld, firstPosition: p)
            for t in 0..<n {
                (K + (p + t) * dh).update(from: k + t * ld, count: dh)
                (Vc + (p + t) * dh).update(from: v + t * ld, count: dh)
            }
            let blockRows = min(queryBlock, n)
            let S = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * (p + n))
            defer { S.deallocate() }
            var i0 = 0
            while i0 < n {
                let rows = min(queryBlock, n - i0), keys = p + i0 + rows
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keys), Int32(dh),
                            scale, q + i0 * ld, Int32(ld), K, Int32(dh), 0, S, Int32(keys))
                for r in 0..<rows { Kernels.causalSoftmaxRow(S + r * keys, visible: p + i0 + r + 1, count: keys) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(dh), Int32(keys),
                            1, S, Int32(keys), Vc, Int32(dh), 0, o + i0 * d, Int32(d))
                i0 += rows
            }
        }
    }

    /// `NeoXModel.mlp` with the decoder's projections.
    private func mlp(_ input: UnsafeMutablePointer<Float>, rows: Int, layer w: NeoXLayerWeights,
                     hidden: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let d = model.config.hiddenSize, ff = model.config.intermediateSize
        Self.project(input, rows: rows, inFeatures: d, weight: w.upWeight, bias: w.upBias, outFeatures: ff, into: hidden)
        let activation = model.activation, total = rows * ff
        let parts = min(Kernels.workers, max(1, total / 65536)), shared = SharedPointer(hidden)
        Kernels.parallel(parts) { part in
            let range = Kernels.slice(total, parts: parts, part: part)
            Kernels.activate(shared.base + range.lowerBound, count: range.count, activation)
        }
        Self.project(hidden, rows: rows, inFeatures: ff, weight: w.downWeight, bias: w.downBias, outFeatures: d, into: out)
    }

    /// Rows at or below which a projection is one `sgemv` per row (see `project`).
    static let gemvRows = 2
    /// Rows at or below which a projection is cut into `sgemm` calls of at most
    /// `smallProductLimit` multiply-adds, the size up to which OpenBLAS (0.3.x, x86-64 AVX-512
    /// kernels) uses its small-matrix kernel, which does not pack W.
    static let smallRows = 32
    static let smallProductLimit = 1_000_000
    /// The most output elements (rows · features) of one such call: OpenBLAS's permit function
    /// sends a transposed-A ("TN", which a row-major `x·Wᵀ` becomes) product with a larger C to
    /// the packing kernel (`sgemm_small_kernel_permit_skylakex.c`: `M * N > 1200`), which
    /// re-packs the weight slice every step (measured: 30% of a batch-16 step in `sgemm_incopy`).
    static let smallOutputLimit = 1200

    /// `y = x·Wᵀ (+ b)` as `Kernels.linear`, but for the few rows of a decoding step, where
    /// `sgemm` spends as long packing W as multiplying (measured: a third of a step in OpenBLAS's
    /// copy routine): one or two rows go through `sgemv`, which streams W once; up to `smallRows`
    /// rows through `sgemm` calls small enough not to pack. Split by output features across the
    /// workers like `Kernels.linear`.
    static func project(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, outFeatures: Int, into y: UnsafeMutablePointer<Float>) {
        guard rows <= gemvRows else {
            guard rows <= smallRows else {
                Kernels.linear(x, rows: rows, inFeatures: inFeatures, weight: weight, bias: bias, outFeatures: outFeatures, into: y)
                return
            }
            // Slices of output features small enough (rows · width · in ≤ 10⁶ multiply-adds, rows · width ≤ 1200) for
            // OpenBLAS's unpacked small-matrix sgemm kernel; larger calls re-pack W every step.
            let width = max(8, min(outFeatures, min(smallProductLimit / (rows * inFeatures), smallOutputLimit / rows) / 8 * 8))
            let parts = max(1, outFeatures / width)
            let (xs, ws, ys, bs) = (SharedPointer(x), SharedPointer(weight), SharedPointer(y), bias.map { SharedPointer($0) })
            Kernels.parallel(parts) { part in
                let c = Kernels.slice(outFeatures, parts: parts, part: part)
                var beta: Float = 0
                if let bias = bs?.readOnly {
                    for row in 0..<rows { (ys.base + row * outFeatures + c.lowerBound).update(from: bias + c.lowerBound, count: c.count) }
                    beta = 1
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(c.count), Int32(inFeatures),
                            1, xs.readOnly, Int32(inFeatures), ws.readOnly + c.lowerBound * inFeatures, Int32(inFeatures),
                            beta, ys.base + c.lowerBound, Int32(outFeatures))
            }
            return
        }
        let parts = max(1, min(4 * Kernels.workers, outFeatures / 256))
        let (xs, ws, ys, bs) = (SharedPointer(x), SharedPointer(weight), SharedPointer(y), bias.map { SharedPointer($0) })
        Kernels.parallel(parts) { part in
            let c = Kernels.slice(outFeatures, parts: parts, part: part)
            guard !c.isEmpty else { return }
            for row in 0..<rows {
                let out = ys.base + row * outFeatures + c.lowerBound
                var beta: Float = 0
                if let bias = bs?.readOnly { out.update(from: bias + c.lowerBound, count: c.count); beta = 1 }
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(c.count), Int32(inFeatures), 1,
                            ws.readOnly + c.lowerBound * inFeatures, Int32(inFeatures), xs.readOnly + row * inFeatures, 1,
                            beta, out, 1)
            }
        }
    }

    /// The per-call buffers of `run`, sized for `rows` rows.
    private final class Workspace {
        let rows: Int
        let x, ln, qkv, heads, attnOut, hidden, mlpOut: UnsafeMutablePointer<Float>

        init(rows: Int, config cfg: NeoXConfig) {
            self.rows = rows
            let n = max(rows, 1), d = cfg.hiddenSize
            x = .allocate(capacity: n * d)
            ln = .allocate(capacity: n * d)
            qkv = .allocate(capacity: n * 3 * d)
            heads = .allocate(capacity: n * d)
            attnOut = .allocate(capacity: n * d)
            hidden = .allocate(capacity: n * cfg.intermediateSize)
            mlpOut = .allocate(capacity: n * d)
        }

        deinit { for p in [x, ln, qkv, heads, attnOut, hidden, mlpOut] { p.deallocate() } }
    }
}
