import TestSupport
import XCTest
@testable import ProbeStats

final class CKATests: XCTestCase {
    private func feed(_ accumulator: inout CKAAccumulator, x: [Float], y: [Float], rows: Int, chunks: [Int]) {
        var start = 0
        var sizes = chunks
        let (dx, dy) = (accumulator.dimX, accumulator.dimY)
        while start < rows {
            let take = min(sizes.isEmpty ? rows - start : sizes.removeFirst(), rows - start)
            accumulator.add(x: Array(x[(start * dx)..<((start + take) * dx)]), y: Array(y[(start * dy)..<((start + take) * dy)]), rows: take)
            start += take
        }
    }

    func testLinearCKAMatchesTorch() throws {
        let fixture = try ProbeFixtures.Synthetic()
        let (x, xShape) = try fixture.array("x")
        let (y, yShape) = try fixture.array("y")
        for chunks in [[317], [5, 250, 3], [1, 1, 1, 100]] {
            for chunkRows in [256, 16] {
                var cka = CKAAccumulator(dimX: xShape[1], dimY: yShape[1], chunkRows: chunkRows)
                feed(&cka, x: x, y: y, rows: xShape[0], chunks: chunks)
                let result = cka.result()
                XCTAssertEqual(result.tokenCount, 317)
                assertClose(result.cka, try fixture.number("cka_xy"), "cka chunks \(chunks) chunkRows \(chunkRows)")
                XCTAssertNil(result.debiasedCKA)
            }
        }
    }

    func testLinearCKAInvariances() throws {
        let fixture = try ProbeFixtures.Synthetic()
        let (x, shape) = try fixture.array("x")
        var same = CKAAccumulator(dimX: shape[1], dimY: shape[1])
        same.add(x: x, y: x, rows: shape[0])
        assertClose(same.result().cka, try fixture.number("cka_xx"), "CKA(X, X)")
        var affine = CKAAccumulator(dimX: shape[1], dimY: shape[1], chunkRows: 64)
        affine.add(x: x, y: x.map { 2 * $0 + 1 }, rows: shape[0])
        assertClose(affine.result().cka, try fixture.number("cka_x_2x_plus_1"), "CKA(X, 2X+1)")
    }

    func testDebiasedMinibatchCKAMatchesTorch() throws {
        let fixture = try ProbeFixtures.Synthetic()
        let (x, xShape) = try fixture.array("x")
        let (y, yShape) = try fixture.array("y")
        let k = Int(try fixture.number("debiased_minibatch"))
        var cka = CKAAccumulator(dimX: xShape[1], dimY: yShape[1], minibatchSize: k)
        feed(&cka, x: x, y: y, rows: 311, chunks: [33, 1, 77, 200])
        let partial = cka.result()  // result() must not disturb later additions
        XCTAssertEqual(partial.tokenCount, 311)
        feed(&cka, x: Array(x[(311 * xShape[1])...]), y: Array(y[(311 * yShape[1])...]), rows: 6, chunks: [])
        let result = cka.result()
        XCTAssertEqual(result.tokenCount, 317)
        XCTAssertEqual(result.minibatchCount, Int(try fixture.number("debiased_batches")))
        XCTAssertEqual(result.debiasedTokenCount, result.minibatchCount * k)
        assertClose(try XCTUnwrap(result.debiasedCKA), try fixture.number("debiased_cka_xy"), "debiased CKA")
        assertClose(result.cka, try fixture.number("cka_xy"), "linear CKA alongside the debiased one")
    }

    func testUnbiasedHSICMatchesDirectFormula() {
        // Independent check on a tiny case: HSIC₁ of K with itself via the textbook expression.
        let n = 6
        var k = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { k[i * n + j] = Double((i + 1) * (j + 2) % 7) + (i == j ? 3 : 0) } }
        for i in 0..<n { for j in 0..<i { k[i * n + j] = k[j * n + i] } }
        var kt = k
        for i in 0..<n { kt[i * n + i] = 0 }
        var trace = 0.0, total = 0.0, quadratic = 0.0
        var rowSums = [Double](repeating: 0, count: n)
        for i in 0..<n { for j in 0..<n { trace += kt[i * n + j] * kt[j * n + i]; total += kt[i * n + j]; rowSums[i] += kt[i * n + j] } }
        for i in 0..<n { quadratic += rowSums[i] * rowSums[i] }
        let m = Double(n)
        let direct = (trace + total * total / ((m - 1) * (m - 2)) - 2 / (m - 2) * quadratic) / (m * (m - 3))
        XCTAssertEqual(CKAAccumulator.unbiasedHSIC(k, k, n: n), direct, accuracy: 1e-12 * abs(direct))
    }
}

/// The fp32-chunk products (the default) agree with all-float64 products to 1e-6 relative, on
/// activations shaped like a residual stream: a few outlier dimensions with large means, others
/// near zero, many chunks.
final class CKAProductPrecisionTests: XCTestCase {
    func testFloat32ChunksAgreeWithFloat64() {
        let d = 96, n = 4000
        var state: UInt64 = 12345
        func uniform() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) - 0.5
        }
        var x = [Float](repeating: 0, count: n * d), y = x
        for i in 0..<n {
            for j in 0..<d {
                let outlier: Float = j % 31 == 0 ? 40 : 0
                x[i * d + j] = outlier + uniform() * (j % 7 == 0 ? 8 : 1)
                y[i * d + j] = 0.6 * x[i * d + j] + uniform() * 2 + (j % 13 == 0 ? 25 : 0)
            }
        }
        for sameInput in [false, true] {
            var fast = CKAAccumulator(dimX: d, dimY: d), exact = CKAAccumulator(dimX: d, dimY: d, products: .float64)
            var start = 0
            while start < n {
                let rows = min(333, n - start)
                let xs = Array(x[(start * d)..<((start + rows) * d)]), ys = sameInput ? xs : Array(y[(start * d)..<((start + rows) * d)])
                fast.add(x: xs, y: ys, rows: rows)
                exact.add(x: xs, y: ys, rows: rows)
                start += rows
            }
            let a = fast.result().cka, b = exact.result().cka
            XCTAssertLessThanOrEqual(abs(a - b), 1e-6 * abs(b), "fp32 chunks \(a) vs float64 \(b)")
            print("CKA fp32-chunk vs float64: \(a) vs \(b), relative \(abs(a - b) / abs(b))")
        }
    }
}
