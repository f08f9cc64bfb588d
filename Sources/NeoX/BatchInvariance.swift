extension NeoXModel {
    /// Right-pad sequences of different lengths to a multiple of this (or to the context, if
    /// smaller) to keep every sequence's results bit-identical whatever it is batched with.
    ///
    /// Attention runs in blocks of `attentionQueryBlock` queries, each an `sgemm` whose shape
    /// (rows, visible keys) follows the padded length; OpenBLAS chooses its kernel, and so the
    /// summation order, by shape. With lengths padded to whole blocks, the blocks covering a
    /// sequence's own positions have the same shapes alone and in any batch (the projections are
    /// batch-invariant by themselves: `Kernels.linear`).
    public static var batchInvariantPadding: Int { attentionQueryBlock }

    /// The padded length for sequences of at most `length` tokens under `batchInvariantPadding`.
    public func batchInvariantLength(_ length: Int) -> Int {
        let block = Self.batchInvariantPadding
        return min(max(length, (length + block - 1) / block * block), max(length, config.maxPositionEmbeddings))
    }
}
