import XCTest
@testable import NeoX

/// Where `Kernels.linear` puts each row: the slot of its sequence position, a tile computed in
/// place only when it is consecutive rows with row k at slot k.
final class LinearTilingTests: XCTestCase {
    func testSequencesAreTiledFromTheirOwnStart() {
        let tiles = LinearTiling(rows: 3 * 7, layout: .sequences(length: 7), tileRows: 4).tiles
        XCTAssertEqual(tiles.map(\.rows), [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10], [11, 12, 13], [14, 15, 16, 17], [18, 19, 20]])
        XCTAssertEqual(tiles.map(\.slots), [[0, 1, 2, 3], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2]])
        XCTAssertEqual(tiles.map { $0.isContiguous(tileRows: 4) }, [true, false, true, false, true, false])
    }

    func testGatheredRowsTakeTheirPositionsSlot() {
        let tiles = LinearTiling(rows: 5, layout: .positions([2, 6, 3, 1, 5]), tileRows: 4).tiles
        XCTAssertEqual(tiles.map(\.rows), [[0, 2, 3], [1, 4]])
        XCTAssertEqual(tiles.map(\.slots), [[2, 3, 1], [2, 1]])
    }

    /// Consecutive rows fill a tile in place only when row k sits at slot k: rows whose positions
    /// are a permutation of the slots must go through scratch, each at its own slot.
    func testInPlaceOnlyInSlotOrder() {
        let ordered = LinearTiling(rows: 4, layout: .positions([4, 5, 6, 7]), tileRows: 4).tiles
        XCTAssertEqual(ordered.map { $0.isContiguous(tileRows: 4) }, [true])
        let permuted = LinearTiling(rows: 4, layout: .positions([0, 2, 1, 3]), tileRows: 4).tiles
        XCTAssertEqual(permuted.map(\.slots), [[0, 2, 1, 3]])
        XCTAssertEqual(permuted.map { $0.isContiguous(tileRows: 4) }, [false])
    }
}
