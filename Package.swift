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

/// Warnings are errors for the project's own targets when `CI` (or `NEOXPROBE_WERROR`) is set, as
/// `.ci/run` runs; dependencies keep their own settings.
let strictSettings: [SwiftSetting] = {
    let environment = ProcessInfo.processInfo.environment
    return environment["CI"] != nil || environment["NEOXPROBE_WERROR"] != nil ? [.unsafeFlags(["-warnings-as-errors"])] : []
}()

let package = Package(
    name: "NeoXProbe",
    products: [
        .executable(name: "neoxprobe", targets: ["neoxprobe"]),
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "NeoX", targets: ["NeoX"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "Corpus", targets: ["Corpus"]),
        .library(name: "ProbeStats", targets: ["ProbeStats"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
        .library(name: "Results", targets: ["Results"]),
        .library(name: "Sweep", targets: ["Sweep"]),
        .library(name: "Report", targets: ["Report"]),
        .library(name: "Hub", targets: ["Hub"]),
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

        // Files on disk: memory maps, atomic writes, dtypes, safetensors, torch zip + pickle,
        // config.json, the model locator. No compute.
        .target(name: "Formats", dependencies: [
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ], swiftSettings: strictSettings),
        // Engine: weights, forward pass, kernels, rotary, hooks.
        .target(name: "NeoX", dependencies: ["Formats", "CBLAS"], swiftSettings: engineSwiftSettings + strictSettings),
        .target(name: "Tokenizers", dependencies: ["CSentencePiece", "Formats"], swiftSettings: strictSettings),
        .target(name: "Corpus", dependencies: ["CZstd", "Formats"], swiftSettings: strictSettings),
        // Pure statistics on buffers: moments, outliers, CKA, spectra, weight statistics.
        .target(name: "ProbeStats", dependencies: ["CBLAS"], swiftSettings: strictSettings),
        // Perplexity and LAMBADA scoring.
        .target(name: "Evaluation", dependencies: ["NeoX", "Formats", "Tokenizers", "Corpus"], swiftSettings: strictSettings),
        // The results schema: metric rows, metrics.csv, metric names.
        .target(name: "Results", dependencies: ["Formats"], swiftSettings: strictSettings),
        // Suite discovery, plan/load/measure/record, results files, reference cache.
        .target(name: "Sweep", dependencies: ["NeoX", "Formats", "Tokenizers", "Corpus", "ProbeStats",
                                              "Evaluation", "Results"], swiftSettings: strictSettings),
        // HTML + SVG from the results schema alone (builds without BLAS).
        .target(name: "Report", dependencies: ["Results"], swiftSettings: strictSettings),
        // The Hugging Face Hub's HTTP protocol and cache layout: fetch, verify, audit checkpoints.
        .target(name: "Hub", dependencies: ["Formats"], swiftSettings: strictSettings),
        // A researcher's own program on the library (no @testable), compiled with everything else.
        .executableTarget(name: "layer-outliers", dependencies: ["Formats", "NeoX", "ProbeStats"],
                          path: "Examples/LayerOutliers", swiftSettings: strictSettings),
        .executableTarget(name: "neoxprobe", dependencies: [
            "Formats", "NeoX", "Tokenizers", "Corpus", "Evaluation", "Results", "Sweep", "Report", "Hub",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: strictSettings),

        // Test-only helpers shared by the test targets (SHA-256, repository paths); no product.
        .target(name: "TestSupport", dependencies: ["Formats"], path: "Tests/TestSupport", swiftSettings: strictSettings),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "NeoXTests", dependencies: ["NeoX", "Formats", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "Formats", "Corpus", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "CorpusTests", dependencies: ["Corpus", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "ProbeStatsTests", dependencies: ["ProbeStats", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "NeoX", "Formats", "Tokenizers", "Corpus", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "SweepTests", dependencies: ["Sweep", "Results", "NeoX", "Formats", "ProbeStats", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "ReportTests", dependencies: ["Report", "Results", "Formats", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "HubTests", dependencies: ["Hub", "Formats", "TestSupport"], exclude: ["hub_server.py"], swiftSettings: strictSettings),
        .testTarget(name: "neoxprobeTests", dependencies: ["Formats", "TestSupport"], swiftSettings: strictSettings),
    ],
    cxxLanguageStandard: .cxx17
)
