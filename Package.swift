// swift-tools-version:6.0
import PackageDescription
import Foundation

/// The engine's elementwise kernels (softmax, GELU, LayerNorm) are plain loops the compiler
/// vectorises; on x86-64 they may use AVX2/FMA (the Haswell ISA: every x86-64 server CPU since 2015, AMD Zen included).
/// `NEOXPROBE_PORTABLE=1` builds for baseline x86-64 instead.
let engineSwiftSettings: [SwiftSetting] = {
    #if arch(x86_64)
    if ProcessInfo.processInfo.environment["NEOXPROBE_PORTABLE"] == nil {
        return [.unsafeFlags(["-target-cpu", "haswell"])]
    }
    #endif
    return []
}()

let package = Package(
    name: "NeoXProbe",
    products: [
        .executable(name: "neoxprobe", targets: ["neoxprobe"]),
        .library(name: "NeoX", targets: ["NeoX"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "Corpus", targets: ["Corpus"]),
        .library(name: "Probes", targets: ["Probes"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
    ],
    targets: [
        // Thin system-library targets: the only places C headers enter the project.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .target(name: "CSentencePiece",
                linkerSettings: [.linkedLibrary("sentencepiece"), .linkedLibrary("stdc++")]),

        // Engine: config, checkpoint formats, tensors, forward pass, hooks.
        .target(name: "NeoX", dependencies: [
            "CBLAS",
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ], swiftSettings: engineSwiftSettings),
        .target(name: "Tokenizers", dependencies: ["CSentencePiece"]),
        .target(name: "Corpus", dependencies: ["CZstd", "Tokenizers"]),
        .target(name: "Probes", dependencies: ["NeoX", "Tokenizers", "Corpus", "CBLAS"]),
        .executableTarget(name: "neoxprobe", dependencies: [
            "NeoX", "Tokenizers", "Corpus", "Probes",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Test-only helpers shared by the test targets (SHA-256, repository paths); no product.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "NeoXTests", dependencies: ["NeoX", "TestSupport"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "TestSupport"]),
        .testTarget(name: "CorpusTests", dependencies: ["Corpus", "TestSupport"]),
        .testTarget(name: "ProbesTests", dependencies: ["Probes", "TestSupport"]),
    ],
    cxxLanguageStandard: .cxx17
)
