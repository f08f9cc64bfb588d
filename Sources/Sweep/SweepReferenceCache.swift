import Formats
import Foundation

/// The reference checkpoint's activations, kept on disk for CKA.
///
/// Every other checkpoint's activations are compared against the reference's on the same tokens,
/// so the reference is run first and its activations (fp32, one file per hook, tokens in order)
/// are written under `RESULTS/.reference/`. Later checkpoints read them back through a memory map,
/// chunk by chunk, so memory does not grow with the token count, and a resumed sweep does not need
/// to recompute them. A `complete.json` marker is written atomically only after every file is
/// complete and fsynced; it records what the activations depend on (options fingerprint, the
/// reference checkpoint's content hash, token count, width, hooks, byte sizes), so a cache from a
/// crashed run or for other data is recognised and recomputed instead of trusted.
public struct SweepReferenceCache: Sendable {
    public struct Descriptor: Sendable, Equatable, Codable {
        public var fingerprint: String
        public var referenceStep: Int
        public var checkpointHash: String
        public var tokenCount: Int
        public var dimension: Int
        public var hooks: [String]

        public var bytesPerHook: Int { tokenCount * dimension * MemoryLayout<Float>.size }
    }

    public let directory: URL
    public let descriptor: Descriptor
    private let files: [String: MappedFile]

    static let markerName = "complete.json"

    static func fileName(hook: String) -> String { hook + ".f32" }

    /// Opens a complete cache matching `expected`, or returns nil (missing, incomplete, stale).
    public static func open(directory: URL, expected: Descriptor) -> SweepReferenceCache? {
        let marker = directory.appendingPathComponent(markerName)
        guard let data = try? Data(contentsOf: marker),
              let found = try? JSONDecoder().decode(Descriptor.self, from: data), found == expected else { return nil }
        var files: [String: MappedFile] = [:]
        for hook in expected.hooks {
            guard let file = try? MappedFile(directory.appendingPathComponent(fileName(hook: hook))),
                  file.count == expected.bytesPerHook else { return nil }
            files[hook] = file
        }
        return SweepReferenceCache(directory: directory, descriptor: expected, files: files)
    }

    private init(directory: URL, descriptor: Descriptor, files: [String: MappedFile]) {
        self.directory = directory
        self.descriptor = descriptor
        self.files = files
    }

    /// Calls `body` with `count` tokens of `hook` starting at token `offset` (`count × dimension`
    /// floats, straight from the map), valid only during the call.
    public func withRows<R>(hook: String, offset: Int, count: Int,
                            _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        guard let file = files[hook] else { throw SweepError(.cache, "reference cache has no activations for \(hook)") }
        let d = descriptor.dimension
        guard offset >= 0, count >= 0, offset <= descriptor.tokenCount - count else {
            throw SweepError(.cache, "reference cache: tokens \(offset)..<\(offset + count) outside 0..<\(descriptor.tokenCount)")
        }
        // Read once per checkpoint: the pages go back to the page cache afterwards, so reading a
        // multi-GB cache does not count against the process's resident memory.
        defer { file.releasePages(offset: offset * d * 4, length: count * d * 4) }
        return try file.withUnsafeBytes(offset: offset * d * 4, length: count * d * 4) { bytes in
            try body(bytes.bindMemory(to: Float.self))
        }
    }

    /// Streams activations into the cache files while the reference checkpoint runs.
    public final class Writer {
        public let directory: URL
        public let descriptor: Descriptor
        private var files: [String: OutputFile] = [:]
        private var written: [String: Int] = [:]

        /// Invalidates any previous cache in `directory` (marker first) and opens fresh files.
        public init(directory: URL, descriptor: Descriptor) throws {
            self.directory = directory
            self.descriptor = descriptor
            let fileManager = FileManager.default
            try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
            let marker = directory.appendingPathComponent(SweepReferenceCache.markerName)
            if fileManager.fileExists(atPath: marker.path) { try fileManager.removeItem(at: marker) }
            for name in (try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? [] where name.hasSuffix(".f32") {
                try? fileManager.removeItem(at: directory.appendingPathComponent(name))
            }
            for hook in descriptor.hooks {
                files[hook] = try OutputFile(creating: directory.appendingPathComponent(SweepReferenceCache.fileName(hook: hook)))
                written[hook] = 0
            }
        }

        /// Appends the next rows of `hook` (tokens in order).
        public func append(hook: String, values: UnsafeBufferPointer<Float>) throws {
            guard let file = files[hook] else { return }
            try file.write(UnsafeRawBufferPointer(values))
            written[hook, default: 0] += values.count * MemoryLayout<Float>.size
        }

        /// Checks sizes, fsyncs and closes the files, then writes the marker atomically. Each file
        /// closes exactly once (`OutputFile`), whether this succeeds, fails part-way or is never called.
        public func finish() throws -> SweepReferenceCache {
            for (hook, file) in files.sorted(by: { $0.key < $1.key }) {
                guard written[hook] == descriptor.bytesPerHook else {
                    throw SweepError(.cache, "reference activation cache for \(hook): wrote \(written[hook] ?? 0) bytes, expected \(descriptor.bytesPerHook)")
                }
                try file.synchronize()
                file.close()
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(encoder.encode(descriptor), to: directory.appendingPathComponent(SweepReferenceCache.markerName))
            guard let cache = SweepReferenceCache.open(directory: directory, expected: descriptor) else {
                throw SweepError(.cache, "the reference activation cache in \(directory.path) did not verify after writing")
            }
            return cache
        }
    }
}
