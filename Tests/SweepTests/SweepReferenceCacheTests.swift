import Foundation
import XCTest
@testable import Sweep

/// The CKA reference cache on disk: written in full or not trusted at all.
final class SweepReferenceCacheTests: XCTestCase {
    private let descriptor = SweepReferenceCache.Descriptor(fingerprint: "f", referenceStep: 7, checkpointHash: "h",
                                                            tokenCount: 3, dimension: 2, hooks: ["a", "b", "c"])

    private func rows(_ tokens: Int, from start: Float) -> [Float] { (0..<(tokens * 2)).map { start + Float($0) } }

    private func append(_ values: [Float], hook: String, to writer: SweepReferenceCache.Writer) throws {
        try values.withUnsafeBufferPointer { try writer.append(hook: hook, values: $0) }
    }

    /// `finish()` fails on the second hook (one token short): no marker, nothing opens as a cache,
    /// and a later writer in the same directory works, its descriptors untouched by the failed
    /// writer's teardown (each of whose files closes exactly once).
    func testFinishFailingPartWayLeavesNoCacheAndALaterWriterWorks() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("neoxprobe-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }

        var failed: SweepReferenceCache.Writer? = try SweepReferenceCache.Writer(directory: directory, descriptor: descriptor)
        try append(rows(3, from: 0), hook: "a", to: failed!)
        try append(rows(2, from: 0), hook: "b", to: failed!)
        try append(rows(3, from: 0), hook: "c", to: failed!)
        XCTAssertThrowsError(try failed!.finish()) { error in
            XCTAssertEqual((error as? SweepError)?.kind, .cache, "\(error)")
            XCTAssertTrue("\(error)".contains("cache for b: wrote 16 bytes, expected 24"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent(SweepReferenceCache.markerName).path))
        XCTAssertNil(SweepReferenceCache.open(directory: directory, expected: descriptor))

        // A new writer opens while the failed one still holds its files, so its descriptors may
        // reuse the numbers the failed one closed; tearing the failed one down must not close them.
        let writer = try SweepReferenceCache.Writer(directory: directory, descriptor: descriptor)
        failed = nil
        for (k, hook) in descriptor.hooks.enumerated() { try append(rows(3, from: Float(10 * k)), hook: hook, to: writer) }
        let cache = try writer.finish()

        let reopened = try XCTUnwrap(SweepReferenceCache.open(directory: directory, expected: descriptor))
        for (k, hook) in descriptor.hooks.enumerated() {
            for reader in [cache, reopened] {
                let values = try reader.withRows(hook: hook, offset: 1, count: 2) { Array($0) }
                XCTAssertEqual(values, Array(rows(3, from: Float(10 * k)).dropFirst(2)), hook)
            }
        }
    }
}
