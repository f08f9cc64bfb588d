/// The byte-level BPE model: initial per-byte ids, ranked merges, and the merge loop.
///
/// Merging follows HF `tokenizers` exactly: repeatedly merge the adjacent pair with the lowest
/// rank, the leftmost one among equals, one occurrence at a time. Short words (nearly all) use a
/// quadratic scan over a small array, which is fastest in practice; long words use a heap over a
/// linked list (HF's own algorithm) so a 10k-character word stays O(n log n).
struct BPEModel: Sendable {
    /// `byteIDs[b]`: id of the single-byte token for byte `b`, or -1 if the vocabulary lacks it.
    let byteIDs: [Int32]
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    /// Token for bytes missing from the vocabulary (HF's `unk_token`), if any.
    let unknownID: Int32?
    let fuseUnknown: Bool
    /// HF `ignore_merges`: a word that is itself in the vocabulary is emitted whole.
    let wholeWords: [[UInt8]: Int32]?

    /// Words up to this many symbols use the simple scan.
    private static let shortWordLimit = 64

    @inline(__always)
    private func merge(_ left: Int32, _ right: Int32) -> UInt64? {
        merges[UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))]
    }

    /// Appends the ids of one pre-token (`p[start..<end]`, raw bytes) to `out`.
    func encodeWord(_ p: UnsafePointer<UInt8>, from start: Int, to end: Int, into out: inout [Int32]) {
        if let wholeWords, let id = wholeWords[Array(UnsafeBufferPointer(start: p + start, count: end - start))] {
            out.append(id)
            return
        }
        var symbols = [Int32]()
        symbols.reserveCapacity(end - start)
        for i in start..<end {
            let id = byteIDs[Int(p[i])]
            if id >= 0 {
                symbols.append(id)
            } else if let unknownID {
                if fuseUnknown, symbols.last == unknownID { continue }
                symbols.append(unknownID)
            }
        }
        if symbols.count <= Self.shortWordLimit {
            mergeShort(&symbols)
        } else {
            mergeLong(&symbols)
        }
        out.append(contentsOf: symbols)
    }

    private func mergeShort(_ symbols: inout [Int32]) {
        while symbols.count > 1 {
            var bestRank = UInt64.max
            var bestIndex = -1
            var bestID: Int32 = 0
            for k in 0..<(symbols.count - 1) {
                if let m = merge(symbols[k], symbols[k + 1]), m >> 32 < bestRank {
                    bestRank = m >> 32
                    bestIndex = k
                    bestID = Int32(truncatingIfNeeded: m & 0xFFFF_FFFF)
                }
            }
            if bestIndex < 0 { return }
            symbols[bestIndex] = bestID
            symbols.remove(at: bestIndex + 1)
        }
    }

    private func mergeLong(_ symbols: inout [Int32]) {
        let n = symbols.count
        var ids = symbols
        var prev = (0..<n).map { $0 - 1 }
        var next = (0..<n).map { $0 + 1 < n ? $0 + 1 : -1 }
        var alive = [Bool](repeating: true, count: n)
        // Min-heap of (rank << 32 | position): lowest rank first, then leftmost position.
        var heap = MinHeap()
        for k in 0..<(n - 1) {
            if let m = merge(ids[k], ids[k + 1]) { heap.push((m >> 32) << 32 | UInt64(k)) }
        }
        while let top = heap.pop() {
            let rank = top >> 32
            let pos = Int(top & 0xFFFF_FFFF)
            guard alive[pos], next[pos] >= 0 else { continue }
            let right = next[pos]
            guard let m = merge(ids[pos], ids[right]), m >> 32 == rank else { continue }  // stale entry
            ids[pos] = Int32(truncatingIfNeeded: m & 0xFFFF_FFFF)
            alive[right] = false
            next[pos] = next[right]
            if next[right] >= 0 { prev[next[right]] = pos }
            if prev[pos] >= 0, let m2 = merge(ids[prev[pos]], ids[pos]) {
                heap.push((m2 >> 32) << 32 | UInt64(prev[pos]))
            }
            if next[pos] >= 0, let m2 = merge(ids[pos], ids[next[pos]]) {
                heap.push((m2 >> 32) << 32 | UInt64(pos))
            }
        }
        symbols.removeAll(keepingCapacity: true)
        var k = 0
        while k >= 0 {
            symbols.append(ids[k])
            k = next[k]
        }
    }
}

/// A binary min-heap of packed UInt64 keys (no generic overhead in the merge loop).
private struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(_ value: UInt64) {
        items.append(value)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent] <= items[i] { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var smallest = i
                if l < n, items[l] < items[smallest] { smallest = l }
                if r < n, items[r] < items[smallest] { smallest = r }
                if smallest == i { break }
                items.swapAt(i, smallest)
                i = smallest
            }
        }
        return top
    }
}
