import Dispatch
import Foundation

/// The blocks of one pass, in the order the pass runs them: the single place the forward pass,
/// the decoder and the backward get a block's weights from.
///
/// Resident weights are handed out as loaded. Streamed weights are widened into two fp32 block
/// buffers: while block `order[i]` computes in one, block `order[i+1]` is widened into the other
/// on a background thread (and the one after is asked from disk). The buffers come from a
/// process-wide pool keyed by block shape, so passes (and the models of a sweep, which run one
/// after another) reuse them instead of faulting in fresh memory each pass.
///
/// A block handed out by `next()` is valid until the following `next()` call; the caller must not
/// keep it longer (its storage is then overwritten in place with the block after next).
final class BlockStream: @unchecked Sendable {
    private let weights: NeoXWeights
    private let order: [Int]
    private var position = 0
    /// Streamed only: two slots, each widened on its own queue item.
    private var slots: [BlockSlot] = []

    init(weights: NeoXWeights, order: [Int]) {
        self.weights = weights
        self.order = order
        guard weights.residency == .streamed, let first = order.first else { return }
        let template = weights.streamedBlocks[first]
        slots = (0..<min(2, order.count)).map { _ in BlockSlotPool.shared.take(like: template) }
        start(0)
    }

    deinit { finish() }

    /// Waits for a widening in flight and returns the buffers to the pool (the stream is done).
    func finish() {
        for slot in slots { slot.group.wait() }
        for slot in slots { BlockSlotPool.shared.give(slot) }
        slots = []
        position = order.count
    }

    /// The next block of `order` in fp32 (throws the widening's non-finite error, when checked).
    func next() throws -> NeoXLayerWeights {
        precondition(position < order.count, "BlockStream: more blocks asked for than ordered")
        defer { position += 1 }
        if weights.residency == .resident { return weights.residentBlocks[order[position]] }
        let slot = slots[position % slots.count]
        slot.group.wait()
        if let error = slot.error { throw error }
        if position + 1 < order.count { start(position + 1) }
        return slot.block
    }

    /// Widens `order[index]` into its slot on a background thread.
    private func start(_ index: Int) {
        let slot = slots[index % slots.count], tensors = weights.streamedBlocks[order[index]]
        let check = !weights.allowsNonFinite
        let ahead = index + 1 < order.count ? weights.streamedBlocks[order[index + 1]] : nil
        slot.group.enter()
        DispatchQueue.global(qos: .userInitiated).async {
            ahead?.prefetch()
            do {
                try tensors.widen(into: &slot.block, checkFinite: check)
                slot.error = nil
            } catch {
                slot.error = error
            }
            slot.group.leave()
        }
    }
}

/// One reusable fp32 block buffer. Accessed by one thread at a time: the widening thread between
/// `enter` and `leave` of `group`, the pass after `group.wait()`.
final class BlockSlot: @unchecked Sendable {
    var block: NeoXLayerWeights
    var error: (any Error)?
    let group = DispatchGroup()
    let shape: [Int]

    init(block: NeoXLayerWeights, shape: [Int]) {
        self.block = block
        self.shape = shape
    }
}

/// Free block buffers by shape, at most four of each kept (a pass's two, and two more for a
/// second model running at the same time: a sweep's CKA reference recomputed in lockstep).
final class BlockSlotPool: @unchecked Sendable {
    static let shared = BlockSlotPool()
    private let lock = NSLock()
    private var free: [[Int]: [BlockSlot]] = [:]

    func take(like tensors: BlockTensors) -> BlockSlot {
        let shape = tensors.shapeKey
        lock.lock()
        let slot = free[shape]?.popLast()
        lock.unlock()
        return slot ?? BlockSlot(block: tensors.allocate(), shape: shape)
    }

    func give(_ slot: BlockSlot) {
        lock.lock()
        defer { lock.unlock() }
        if free[slot.shape, default: []].count < 4 { free[slot.shape, default: []].append(slot) }
    }

    /// Drops every pooled buffer (tests measuring memory; a program done with a large model).
    func drain() {
        lock.lock()
        free = [:]
        lock.unlock()
    }
}

extension BlockTensors {
    /// What makes two blocks' buffers interchangeable: every tensor's element count.
    var shapeKey: [Int] {
        [ln1Weight.elementCount, qkvWeight.elementCount, qkvBias?.elementCount ?? -1, denseWeight.elementCount,
         denseBias?.elementCount ?? -1, upWeight.elementCount, downWeight.elementCount]
    }
}
