import Formats
import Foundation
import NeoX
import ProbeStats
import Results

/// One checkpoint of a training suite: its training step and where its files are.
public struct SweepCheckpoint: Sendable, Equatable {
    public var step: Int
    /// The folder or revision name it was found under (`step512`).
    public var name: String
    public var directory: URL

    public init(step: Int, name: String, directory: URL) {
        self.step = step
        self.name = name
        self.directory = directory
    }
}

/// A training suite: the checkpoints of one run, ordered by step.
///
/// Two shapes are accepted because that is how Pythia suites sit on disk: a plain directory of
/// `stepN/` model folders, or a Hugging Face cache repository (`ORG/NAME` looked up in the cache,
/// or a `models--ORG--NAME` folder) whose `refs/stepN` name the revisions. Steps sort numerically,
/// never lexically, so `step1000` comes after `step512`.
public struct SweepSuite: Sendable {
    public enum Kind: String, Sendable { case directory, huggingFaceCache = "huggingface_cache" }

    /// What the suite was named by (a path or ORG/NAME), as given.
    public var spec: String
    public var root: URL
    public var kind: Kind
    public var checkpoints: [SweepCheckpoint]

    /// The step in a `stepN` name (`step0`, `step512`); nil for anything else (`main`, `best`).
    public static func step(fromName name: String) -> Int? {
        guard name.hasPrefix("step") else { return nil }
        let digits = name.dropFirst(4)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }

    public init(spec: String) throws {
        self.spec = spec
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        let root: URL
        if fileManager.fileExists(atPath: spec, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw SweepError(.notFound, option: .suite, "suite \(spec) is a file; expected a directory of stepN/ checkpoints or a Hugging Face cache repository") }
            root = URL(fileURLWithPath: spec).standardizedFileURL
        } else if let cached = ModelLocator.cacheRepository(spec) {
            root = cached
        } else {
            throw SweepError(.notFound, option: .suite, "suite \(spec): no such directory, and no Hugging Face cache repository of that name (looked in \(ModelLocator.cacheRoot().path))")
        }
        self.root = root
        var found: [SweepCheckpoint] = []
        if fileManager.fileExists(atPath: root.appendingPathComponent("refs").path) {
            kind = .huggingFaceCache
            for (revision, directory) in try ModelLocator.revisions(cacheRepo: root) {
                if let step = Self.step(fromName: revision) {
                    found.append(SweepCheckpoint(step: step, name: revision, directory: directory))
                }
            }
        } else {
            kind = .directory
            let names = (try? fileManager.contentsOfDirectory(atPath: root.path)) ?? []
            for name in names {
                guard let step = Self.step(fromName: name) else { continue }
                let directory = root.appendingPathComponent(name)
                var isDir: ObjCBool = false
                if fileManager.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue {
                    found.append(SweepCheckpoint(step: step, name: name, directory: directory))
                }
            }
        }
        found.sort { $0.step < $1.step }
        for (a, b) in zip(found, found.dropFirst()) where a.step == b.step {
            throw SweepError(.invalidOption, option: .suite, "suite \(root.path): '\(a.name)' and '\(b.name)' are both step \(a.step)")
        }
        guard !found.isEmpty else {
            throw SweepError(.notFound, option: .suite, "empty suite: \(root.path) has no stepN checkpoints (expected stepN/ folders, or refs/stepN in a Hugging Face cache repository)")
        }
        checkpoints = found
    }

    /// A Hugging Face cache repository whose checkpoints are listed by someone else (the Hub, for
    /// `sweep --fetch`); their directories need not exist yet.
    public init(spec: String, root: URL, checkpoints: [SweepCheckpoint]) throws {
        self.spec = spec
        self.root = root
        kind = .huggingFaceCache
        self.checkpoints = checkpoints.sorted { $0.step < $1.step }
        guard !self.checkpoints.isEmpty else {
            throw SweepError(.notFound, option: .suite, "empty suite: \(spec) has no stepN revisions")
        }
    }

    public var steps: [Int] { checkpoints.map(\.step) }

    public func checkpoint(step: Int) -> SweepCheckpoint? { checkpoints.first { $0.step == step } }

    /// The steps, comma-separated, for messages that name a step the suite lacks.
    var availableSteps: String { "available: " + steps.map(String.init).joined(separator: ",") }

    /// The checkpoints a step list names: `all`, or a comma-separated list of steps (any order,
    /// returned ascending). Unknown steps are an error that lists the available ones.
    public func select(_ list: String) throws -> [SweepCheckpoint] {
        let trimmed = list.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed == "all" { return checkpoints }
        var chosen: Set<Int> = []
        for item in trimmed.split(separator: ",") {
            let text = item.trimmingCharacters(in: .whitespaces)
            let digits = text.hasPrefix("step") ? String(text.dropFirst(4)) : text
            guard let step = Int(digits), step >= 0 else {
                throw SweepError(.invalidOption, option: .steps, "'\(text)' is not a step number (steps are e.g. 0,512,2000 or all)")
            }
            guard checkpoint(step: step) != nil else {
                throw SweepError(.notFound, option: .steps, "the suite has no step \(step); \(availableSteps)")
            }
            chosen.insert(step)
        }
        guard !chosen.isEmpty else { throw SweepError(.invalidOption, option: .steps, "the step list '\(list)' selects no checkpoints") }
        return checkpoints.filter { chosen.contains($0.step) }
    }
}
