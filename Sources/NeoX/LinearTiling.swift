/// Where the rows of a `Kernels.linear` call sit in their sequences, so each row can be given the
/// same place in the same shape of `sgemm` whatever else the call holds.
///
/// Why: OpenBLAS's result for a row depends on the row's position inside the `sgemm` (its
/// micro-kernels treat the rows of a panel differently). Measured with OpenBLAS 0.3.21 on an AMD
/// EPYC (`Zen` kernels): in a 128 × 288 × 768 product, rows at positions 6–11 (mod 12) and 120–127
/// differ in their last bits from the same row at position 0; with the `SkylakeX` kernels of an
/// AVX-512 EPYC, no position did. Placing a row at `position mod linearTileRows` of a `linearTileRows`-row
/// tile makes its result a function of the row and its sequence position alone, on any CPU.
public enum RowLayout: Sendable {
    /// `rows` = B·T rows of B sequences of `length` tokens, row-major.
    case sequences(length: Int)
    /// Row i is at position `positions[i]` of its sequence (gathered rows: the scored positions).
    case positions([Int])
}

/// A `Kernels.linear` call's tiles: each a list of (row of x, slot in the tile), no slot twice.
struct LinearTiling {
    struct Tile {
        var rows: [Int] = []
        var slots: [Int] = []
        /// The tile is `tileRows` consecutive rows of x, row k at slot k: computed in place.
        func isContiguous(tileRows: Int) -> Bool {
            rows.count == tileRows && rows.last! - rows[0] == tileRows - 1 && slots.elementsEqual(0..<tileRows)
        }
    }

    let tiles: [Tile]

    init(rows: Int, layout: RowLayout, tileRows: Int) {
        var tiles: [Tile] = []
        switch layout {
        case .sequences(let length):
            // Each sequence's own tiles, from its first position: a tile never holds two sequences.
            let T = max(1, length)
            for first in stride(from: 0, to: rows, by: T) {
                let end = min(rows, first + T)
                for start in stride(from: first, to: end, by: tileRows) {
                    let count = min(tileRows, end - start)
                    tiles.append(Tile(rows: Array(start..<(start + count)), slots: Array(0..<count)))
                }
            }
        case .positions(let positions):
            // A row goes to the first tile whose slot `position mod tileRows` is still free.
            precondition(positions.count == rows && positions.allSatisfy { $0 >= 0 }, "one position ≥ 0 per row")
            var nextTile = [Int](repeating: 0, count: tileRows)
            for row in 0..<rows {
                let slot = positions[row] % tileRows
                let t = nextTile[slot]
                nextTile[slot] += 1
                if t == tiles.count { tiles.append(Tile()) }
                tiles[t].rows.append(row)
                tiles[t].slots.append(slot)
            }
        }
        self.tiles = tiles
    }
}
