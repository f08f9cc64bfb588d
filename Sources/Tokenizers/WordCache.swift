/// Memo of pre-token bytes → ids, the main reason encoding is fast: natural text repeats its
/// words, so most pre-tokens skip the merge loop entirely.
///
/// An open-addressing table over two arenas (key bytes, id values) avoids allocating an Array per
/// lookup. It is a plain value; ``BPETokenizer`` keeps one behind a lock and falls back to a
/// private one when another thread holds it.
struct WordCache {
    private struct Slot {
        var hash: UInt64 = 0  // 0 marks an empty slot
        var keyStart: Int32 = 0
        var keyLength: Int32 = 0
        var valueStart: Int32 = 0
        var valueLength: Int32 = 0
    }

    private var slots: [Slot]
    private var keys: [UInt8] = []
    private var values: [Int32] = []
    private var count = 0
    /// Entries kept before the cache is cleared (bounds memory on unbounded input).
    private let maximumEntries: Int
    /// Longer words are not worth remembering (they are rare and would bloat the arenas).
    static let maximumWordLength = 128

    init(maximumEntries: Int = 1 << 18) {
        self.maximumEntries = maximumEntries
        slots = [Slot](repeating: Slot(), count: 1 << 12)
    }

    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(end - start)
        var i = start
        while i + 8 <= end {
            let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
            h = (h ^ w) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < end {
            tail |= UInt64(p[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 29
        return h | 1
    }

    /// Appends the cached ids for the word to `out` and returns true, or returns false on a miss.
    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, hash: UInt64, into out: inout [Int32]) -> Bool {
        let length = end - start
        return slots.withUnsafeBufferPointer { slots in
            let mask = slots.count - 1
            var index = Int(truncatingIfNeeded: hash) & mask
            while true {
                let slot = slots[index]
                if slot.hash == 0 { return false }
                if slot.hash == hash, Int(slot.keyLength) == length {
                    let same = keys.withUnsafeBufferPointer { k in
                        memcmpEqual(k.baseAddress! + Int(slot.keyStart), p + start, length)
                    }
                    if same {
                        values.withUnsafeBufferPointer { v in
                            out.append(contentsOf: UnsafeBufferPointer(start: v.baseAddress! + Int(slot.valueStart),
                                                                       count: Int(slot.valueLength)))
                        }
                        return true
                    }
                }
                index = (index + 1) & mask
            }
        }
    }

    mutating func insert(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, hash: UInt64, ids: ArraySlice<Int32>) {
        if count >= maximumEntries { clear() }
        if (count + 1) * 2 > slots.count { grow() }
        let slot = Slot(hash: hash, keyStart: Int32(keys.count), keyLength: Int32(end - start),
                        valueStart: Int32(values.count), valueLength: Int32(ids.count))
        keys.append(contentsOf: UnsafeBufferPointer(start: p + start, count: end - start))
        values.append(contentsOf: ids)
        place(slot)
        count += 1
    }

    private mutating func place(_ slot: Slot) {
        let mask = slots.count - 1
        var index = Int(truncatingIfNeeded: slot.hash) & mask
        while slots[index].hash != 0 { index = (index + 1) & mask }
        slots[index] = slot
    }

    private mutating func grow() {
        let old = slots
        slots = [Slot](repeating: Slot(), count: old.count * 2)
        for slot in old where slot.hash != 0 { place(slot) }
    }

    private mutating func clear() {
        slots = [Slot](repeating: Slot(), count: 1 << 12)
        keys.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        count = 0
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if UnsafeRawPointer(a + i).loadUnaligned(as: UInt64.self) != UnsafeRawPointer(b + i).loadUnaligned(as: UInt64.self) {
            return false
        }
        i += 8
    }
    while i < n {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}
