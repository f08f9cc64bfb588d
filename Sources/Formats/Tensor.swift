/// A dense fp32 tensor in row-major (C) order: the engine's unit of exchange for activations
/// and logits. `data.count == shape.reduce(1, *)` always holds for tensors the engine returns.
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "Tensor: shape \(shape) does not match \(data.count) elements")
        self.shape = shape
        self.data = data
    }

    public var elementCount: Int { data.count }

    /// The element at a full multi-index (bounds-checked; for tests and small look-ups, not hot loops).
    public subscript(_ index: Int...) -> Float {
        precondition(index.count == shape.count, "Tensor: index rank \(index.count) ≠ rank \(shape.count)")
        var flat = 0
        for (i, dim) in zip(index, shape) {
            precondition(i >= 0 && i < dim, "Tensor: index \(index) out of bounds for shape \(shape)")
            flat = flat * dim + i
        }
        return data[flat]
    }
}
