import Foundation

/// Where the test targets find the repository, its committed fixtures and the shared real data.
///
/// Every test target used to derive these from its own `#filePath`, each counting a different number
/// of `..` steps; deriving them once here keeps the layout in one place. The paths are computed from
/// this file's location at compile time, so the tests work from any working directory.
public enum RepositoryPaths {
    /// The repository root: three levels above this file (`Tests/TestSupport/RepositoryPaths.swift`).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The shared real data (models, corpora, tokenizer): `../shared` from the repository root, as
    /// the README describes. Tests that need it skip when it is absent.
    public static let shared: URL = root.deletingLastPathComponent().appendingPathComponent("shared")

    /// The committed fixtures of one area, `Tests/Fixtures/<area>` (written by the
    /// `Tests/Fixtures/generate_<area>.py` scripts), e.g. `fixtures("tokenizer")`.
    public static func fixtures(_ area: String) -> URL {
        root.appendingPathComponent("Tests/Fixtures").appendingPathComponent(area)
    }
}
