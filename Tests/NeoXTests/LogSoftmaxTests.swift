import Formats
import Foundation
import XCTest
@testable import NeoX

/// `LogSoftmax.summarize` against a direct fp64 computation on rows shaped like a vocabulary.
final class LogSoftmaxTests: XCTestCase {
    func testMatchesFloat64ReferenceAndFirstArgmax() {
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func uniform() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        }
        for (length, spread) in [(1, 1.0), (7, 3.0), (50304, 12.0), (1023, 80.0)] as [(Int, Float)] {
            var row = (0..<length).map { _ in (uniform() - 0.5) * 2 * spread }
            if length > 3 { row[length - 1] = row.max()!; row[2] = row.max()! }   // a tie: the first wins
            let summary = row.withUnsafeBufferPointer { LogSoftmax.summarize($0) }

            let maxValue = Double(row.max()!)
            let expected = maxValue + log(row.reduce(0.0) { $0 + exp(Double($1) - maxValue) })
            XCTAssertEqual(summary.logSumExp, expected, accuracy: 1e-6 * max(1, abs(expected)), "length \(length)")
            XCTAssertEqual(summary.argmax, row.firstIndex(of: row.max()!)!, "length \(length)")
            XCTAssertEqual(summary.logProbability(of: row[0]), Double(row[0]) - expected, accuracy: 1e-6 * max(1, abs(expected)))
        }
    }

    func testVeryNegativeLogitsUnderflowToZeroProbability() {
        let row: [Float] = [0, -200, -1e30]
        let summary = row.withUnsafeBufferPointer { LogSoftmax.summarize($0) }
        XCTAssertEqual(summary.logSumExp, 0, accuracy: 1e-7)
        XCTAssertEqual(summary.argmax, 0)
    }
}
