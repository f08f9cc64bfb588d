import Formats

/// Combines the gradients of several backward passes into the gradient of the loss over all of
/// them, so a large batch is differentiated a few rows at a time with memory bounded by one pass.
///
/// Each pass's gradients are of its own mean loss; weighted by its scored-token count, summed in
/// float64 and divided by the total count they become the gradient of the mean over every pass.
/// A single pass is kept as it came (fp32, no float64 copy). Activation gradients of the passes'
/// sequences are concatenated along the batch axis. Feed it from `backward`'s observer.
public final class GradientAccumulator {
    /// Gradient names in the order they first arrived.
    public private(set) var order: [String] = []
    public private(set) var tokenCount = 0
    public private(set) var passCount = 0
    private let singlePass: Bool
    private var shapes: [String: [Int]] = [:]
    private var single: [String: [Float]] = [:]
    private var sums: [String: [Double]] = [:]
    private var activations: [String: [Float]] = [:]
    private var lossSum = 0.0

    /// `singlePass`: exactly one pass will be added (keeps fp32 values as they come).
    public init(singlePass: Bool) { self.singlePass = singlePass }

    /// The mean loss over every pass added.
    public var loss: Double { lossSum / Double(max(1, tokenCount)) }

    /// Adds one gradient of a pass scoring `tokens` positions (call from the observer).
    public func add(_ point: GradientPoint, shape: [Int], values: UnsafeBufferPointer<Float>, tokens: Int) {
        let name = point.name, weight = Double(tokens)
        if shapes[name] == nil { order.append(name) }
        switch point {
        case .activation:
            let previous = shapes[name]?[0] ?? 0
            shapes[name] = [previous + shape[0]] + shape.dropFirst()
            activations[name, default: []].append(contentsOf: singlePass ? Array(values) : values.map { Float(Double($0) * weight) })
        case .parameter:
            shapes[name] = shape
            if singlePass { single[name] = Array(values); return }
            sums[name, default: [Double](repeating: 0, count: values.count)].withUnsafeMutableBufferPointer { sum in
                for i in 0..<values.count { sum[i] += Double(values[i]) * weight }
            }
        }
    }

    /// Ends a pass: its loss and scored-token count (from `BackwardResult`).
    public func finishPass(loss: Double, tokens: Int) {
        lossSum += loss * Double(tokens)
        tokenCount += tokens
        passCount += 1
    }

    /// Runs `backward` on `passes` (inputs and targets each) and accumulates what `plan` keeps.
    public static func run(_ model: NeoXModel, passes: [(inputs: [[Int32]], targets: LossTargets)],
                           plan: GradientPlan) throws -> GradientAccumulator {
        let sums = GradientAccumulator(singlePass: passes.count == 1)
        for pass in passes {
            let count = pass.targets.count
            let result = try model.backward(tokens: pass.inputs, targets: pass.targets, plan: plan) { point, shape, values in
                sums.add(point, shape: shape, values: values, tokens: count)
            }
            sums.finishPass(loss: result.loss, tokens: result.tokenCount)
        }
        return sums
    }

    /// Every gradient as a tensor of the loss over all passes, handed over rather than copied:
    /// the accumulator is empty afterwards, so the gradients exist once while being written.
    public func takeTensors() -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        let inverse = 1 / Double(max(1, tokenCount))
        for name in order {
            let shape = shapes[name]!
            if let values = single.removeValue(forKey: name) {
                result[name] = Tensor(shape: shape, data: values)
            } else if let sum = sums.removeValue(forKey: name) {
                result[name] = Tensor(shape: shape, data: sum.map { Float($0 * inverse) })
            } else if let values = activations.removeValue(forKey: name) {
                result[name] = Tensor(shape: shape, data: singlePass ? values : values.map { Float(Double($0) * inverse) })
            }
        }
        return result
    }
}
