import Formats
import Foundation
import NeoX
import ProbeStats
import Results

/// A fast, non-cryptographic 64-bit hash, used to tell whether two checkpoints hold exactly the
/// same tensors and whether the evaluation tokens changed between runs.
///
/// Eight bytes at a time with a multiply–rotate round (in the style of xxHash64's lanes) and a
/// final avalanche: several GB/s, so hashing a checkpoint costs far less than loading it. It only
/// needs to make accidental collisions negligible, not resist an adversary.
public struct ContentHasher: Sendable {
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private var state: UInt64 = 0x27D4_EB2F_1656_67C5
    private var length: UInt64 = 0

    public init() {}

    @inline(__always)
    private static func round(_ accumulator: UInt64, _ word: UInt64) -> UInt64 {
        let mixed = accumulator ^ (word &* prime2)
        return ((mixed << 31) | (mixed >> 33)) &* prime1 &+ prime3
    }

    public mutating func combine(bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        length &+= UInt64(count)
        guard count > 0, let base = bytes.baseAddress else { return }
        var h = state
        var offset = 0
        while offset + 8 <= count {
            h = Self.round(h, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
            offset += 8
        }
        if offset < count {
            var tail: UInt64 = 0
            for i in offset..<count { tail |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << (8 * UInt64(i - offset)) }
            h = Self.round(h, tail ^ 0xFF)
        }
        state = h
    }

    public mutating func combine(_ text: String) {
        var copy = text
        copy.withUTF8 { combine(bytes: UnsafeRawBufferPointer($0)) }
        combine(UInt64(text.utf8.count))
    }

    public mutating func combine(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { combine(bytes: $0) }
    }

    public mutating func combine(_ value: Int) { combine(UInt64(bitPattern: Int64(value))) }

    public func finalize() -> UInt64 {
        var h = state ^ length
        h ^= h >> 33
        h &*= Self.prime2
        h ^= h >> 29
        h &*= Self.prime3
        h ^= h >> 32
        return h
    }

    /// 16 lowercase hex digits.
    public var hexDigest: String {
        let hex = String(finalize(), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Every tensor of a checkpoint, in name order: name, dtype, shape and raw stored bytes. Two
    /// checkpoints get the same digest exactly when they store the same tensors bit for bit,
    /// whatever file layout holds them.
    public static func digest(of checkpoint: Checkpoint) -> String {
        var hasher = ContentHasher()
        for name in checkpoint.tensorNames {
            guard let entry = checkpoint.entries[name] else { continue }
            hasher.combine(name)
            hasher.combine(entry.dtype.rawValue)
            hasher.combine(entry.shape.count)
            for extent in entry.shape { hasher.combine(extent) }
            entry.withUnsafeBytes { hasher.combine(bytes: $0) }
            entry.releasePages()   // hashed once: page cache, not this process's resident memory
        }
        return hasher.hexDigest
    }

    /// Token sequences (lengths and ids).
    public static func digest(of sequences: [[Int32]]) -> String {
        var hasher = ContentHasher()
        hasher.combine(sequences.count)
        for sequence in sequences {
            hasher.combine(sequence.count)
            sequence.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
        return hasher.hexDigest
    }
}
