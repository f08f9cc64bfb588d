import Foundation

/// What an evaluator needs from one row of logits without materialising its softmax: the greedy
/// token and log Σ exp. Perplexity and LAMBADA call it once per scored position over ~50k logits,
/// so the exponentials run as fp32 vector code (`KernelMath.exp`, within 2 ulp of `expf`) and are
/// summed in fp64 over blocks, which keeps the result within ~1e-7 of an all-fp64 computation.
public enum LogSoftmax {
    public struct Summary: Sendable, Equatable {
        /// The largest logit and the first index holding it (torch's argmax tie rule).
        public var maxLogit: Float
        public var argmax: Int
        /// log Σⱼ exp(logitⱼ), computed as max + log Σ exp(logitⱼ − max).
        public var logSumExp: Double

        /// log softmax(logits)[i] for the logit at i.
        public func logProbability(of logit: Float) -> Double { Double(logit) - logSumExp }
    }

    /// Elements a block exponentiates in fp32 before its sum joins the fp64 total.
    static let blockLength = 512

    public static func summarize(_ row: UnsafeBufferPointer<Float>) -> Summary {
        precondition(!row.isEmpty, "log-softmax of an empty row")
        let count = row.count
        let logits = row.baseAddress!
        let maxLogit = Kernels.rowMax(logits, count: count)
        var argmax = 0
        while argmax < count - 1 && !(logits[argmax] == maxLogit) { argmax += 1 }

        var total = 0.0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: blockLength) { block in
            let exps = block.baseAddress!
            var start = 0
            while start < count {
                let length = min(blockLength, count - start)
                let source = logits + start
                for j in 0..<length { exps[j] = KernelMath.exp(source[j] - maxLogit) }
                total += Double(Kernels.rowSum(exps, count: length))
                start += length
            }
        }
        return Summary(maxLogit: maxLogit, argmax: argmax, logSumExp: Double(maxLogit) + Foundation.log(total))
    }
}
