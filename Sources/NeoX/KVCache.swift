import Foundation

/// The keys (rotary already applied) and values of every position a `Decoder` has run, for each
/// layer, sequence and head, so that a new token attends to the past without recomputing it.
///
/// Layout `[layer][sequence][head][capacity][dh]`, row-major: one head's keys of one sequence
/// are a contiguous `capacity × dh` matrix, which is what `cblas_sgemm` wants for `q·Kᵀ` and `P·V`.
/// Each sequence has its own length (`lengths[b]`): sequences of a batch need not be padded.
/// Memory: `2 · layers · batch · capacity · d` floats, allocated once.
public final class KVCache {
    public let layers: Int
    public let batch: Int
    public let heads: Int
    public let headDim: Int
    /// Positions each sequence can hold.
    public let capacity: Int
    /// Positions of each sequence already in the cache (its next token's position).
    public internal(set) var lengths: [Int]

    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>

    init(layers: Int, batch: Int, heads: Int, headDim: Int, capacity: Int) {
        self.layers = layers
        self.batch = batch
        self.heads = heads
        self.headDim = headDim
        self.capacity = capacity
        lengths = Array(repeating: 0, count: batch)
        let count = layers * batch * heads * capacity * headDim
        keys = .allocate(capacity: count)
        values = .allocate(capacity: count)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Offset of position 0 of (layer, sequence, head) in `keys` / `values`.
    @inline(__always)
    func offset(layer: Int, sequence: Int, head: Int) -> Int {
        (((layer * batch + sequence) * heads) + head) * capacity * headDim
    }

    /// Bytes held by the cache.
    public var byteCount: Int { 2 * layers * batch * heads * capacity * headDim * MemoryLayout<Float>.size }
}

extension RotaryTable {
    /// Rotates the first `dims` elements of `rows` vectors in place, row r having position
    /// `first + r` (the same loop as `apply(_:rows:stride:)`, which is `first = 0`).
    @inline(__always)
    func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int, firstPosition first: Int) {
        rotate(x, rows: rows, stride: stride, firstPosition: first, inverse: false)
    }
}
