// swift-tools-version:6.0
import Foundation
import PackageDescription

/// The fuzz targets, outside the main package so the main build and its tests never see libFuzzer.
/// The main package is a path dependency; SwiftPM names a path dependency after its directory,
/// so that name is taken from where this file sits (a clone may be called anything).
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let main = root.lastPathComponent

let package = Package(
    name: "NeoXProbeFuzz",
    dependencies: [.package(path: "..")],
    targets: [
        // One binary, every parser: `NEOXPROBE_FUZZ_TARGET` picks the target (see Fuzz/README.md).
        // `TokenFile.swift` is the command line's own file (a symbolic link), compiled here too.
        .executableTarget(name: "neoxprobe-fuzz", dependencies: [
            .product(name: "Formats", package: main),
            .product(name: "Tokenizers", package: main),
            .product(name: "Corpus", package: main),
            .product(name: "Results", package: main),
            .product(name: "Report", package: main),
        ], swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ],
    // Globals (the target table, the scratch directory) are set once at start-up; libFuzzer runs one thread.
    swiftLanguageModes: [.v5]
)
