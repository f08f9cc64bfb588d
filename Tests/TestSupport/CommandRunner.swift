import Foundation

/// Runs the built `neoxprobe` executable the way a person would, for the end-to-end tests.
///
/// The executable is looked up next to the test bundle (SwiftPM puts both in the same build
/// directory). A missing binary is an error, not a skip: an end-to-end suite that silently runs
/// nothing would pass while testing nothing.
public enum CommandRunner {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// What one run printed and how it ended.
    public struct Outcome {
        public var status: Int32
        public var standardOutput: Data
        public var standardError: String
        public var output: String { String(decoding: standardOutput, as: UTF8.self) }
    }

    /// The `neoxprobe` executable of this build (or another executable product, by name).
    public static func executable(_ name: String = "neoxprobe") throws -> URL {
        var candidates: [URL] = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        if let executable = Bundle.main.executableURL { candidates.append(executable.deletingLastPathComponent()) }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        for directory in candidates {
            let url = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw Failure(description: "no \(name) executable next to the tests (looked in \(candidates.map(\.path))): build it with `swift build --build-tests` (make test does)")
    }

    /// Starts `neoxprobe arguments…` in the repository root, output discarded; the caller waits or kills.
    /// `environment` entries are added to (or replace) this process's environment.
    public static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = try executable()
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.currentDirectoryURL = RepositoryPaths.root
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs `neoxprobe arguments…` (or another `executable`) to completion in the repository root (or `directory`).
    /// `input`, when given, is fed to its standard input (else it reads an empty one).
    public static func run(_ arguments: [String], executable name: String = "neoxprobe",
                           in directory: URL = RepositoryPaths.root, environment: [String: String] = [:],
                           input: Data? = nil) throws -> Outcome {
        let process = Process()
        process.executableURL = try executable(name)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.currentDirectoryURL = directory
        let inputPipe = input.map { _ in Pipe() }
        process.standardInput = inputPipe ?? FileHandle.nullDevice
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        if let input, let inputPipe {
            let writer = inputPipe.fileHandleForWriting
            Thread.detachNewThread {
                writer.write(input)
                try? writer.close()
            }
        }
        // Drain stderr on another thread so neither pipe can fill up and block the child.
        let errorText = Drained(errors.fileHandleForReading)
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, standardOutput: outputData, standardError: errorText.wait())
    }
}

/// A pipe read to its end on a background thread.
private final class Drained: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()   // written once, read after `done` is signalled
            done.signal()
        }
    }

    func wait() -> String {
        done.wait()
        return String(decoding: data, as: UTF8.self)
    }
}
