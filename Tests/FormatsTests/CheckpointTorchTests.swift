import Foundation
import TestSupport
import XCTest
@testable import Formats

#if canImport(Glibc)
import Glibc
#endif

/// `torch.save` files: the pickle subset, the zip layer, and everything a loader must refuse.
final class CheckpointTorchTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    private func expected(_ file: String) throws -> [String: CheckpointFixtures.Expected] {
        try CheckpointFixtures.tensors(CheckpointFixtures.json("torch.json")[file])
    }

    /// OrderedDict with `_metadata` (BUILD), shared storages with offsets, 0-d, empty, every dtype.
    func testAssortedStateDict() throws {
        let entries = try TorchCheckpoint.read(CheckpointFixtures.url("torch/assorted.bin"))
        try assertEntries(entries, match: try expected("assorted.bin"), "assorted.bin")
    }

    /// `nn.Parameter` values pickle through `_rebuild_parameter`.
    func testParameters() throws {
        let entries = try TorchCheckpoint.read(CheckpointFixtures.url("torch/parameters.bin"))
        try assertEntries(entries, match: try expected("parameters.bin"), "parameters.bin")
    }

    /// A deflated data.pkl is inflated (with its CRC checked); the stored storages still map in place.
    func testDeflatedPickleStillLoads() throws {
        let entries = try TorchCheckpoint.read(CheckpointFixtures.url("torch/deflated_pickle.bin"))
        try assertEntries(entries, match: try expected("deflated_pickle.bin"), "deflated_pickle.bin")
    }

    /// Sharded `pytorch_model-*.bin` with `pytorch_model.bin.index.json`, written by transformers.
    func testShardedPytorchBinDirectory() throws {
        let record = try CheckpointFixtures.json("tiny-sharded-bin.json")
        let checkpoint = try Checkpoint(directory: CheckpointFixtures.url("tiny-sharded-bin"))
        let shards = try XCTUnwrap(record["shards"] as? [String])
        XCTAssertEqual(checkpoint.layout, .shardedPytorchBin(shards: shards.count))
        XCTAssertGreaterThan(shards.count, 1)
        let modelNames = try XCTUnwrap(record["model_names"] as? [String])
        let tensors = try CheckpointFixtures.tensors(record["tensors"]).filter { modelNames.contains($0.key) }
        try assertEntries(checkpoint.entries, match: tensors, "tiny-sharded-bin")
    }

    // MARK: - Refused files

    func testNonContiguousTensorIsRefusedByName() {
        assertFormatError(try TorchCheckpoint.read(CheckpointFixtures.url("torch/noncontiguous.bin")), kind: .malformed,
                        path: "noncontiguous.bin", ["'transposed'", "not contiguous"])
    }

    func testForbiddenGlobalIsRefusedByName() {
        assertFormatError(try TorchCheckpoint.read(CheckpointFixtures.url("torch/forbidden_global.bin")), kind: .malformed,
                        path: "forbidden_global.bin", ["forbidden global", "system", "data.pkl"])
    }

    func testLegacyFormatIsRefused() {
        assertFormatError(try TorchCheckpoint.read(CheckpointFixtures.url("torch/legacy.bin")), kind: .unsupported,
                        path: "legacy.bin", ["legacy", "torch>=1.6"])
    }

    func testCompressedStorageIsRefused() {
        assertFormatError(try TorchCheckpoint.read(CheckpointFixtures.url("torch/deflated_storage.bin")), kind: .unsupported,
                        path: "deflated_storage.bin", ["compressed", "/data/"])
    }

    func testBigEndianIsRefused() {
        assertFormatError(try TorchCheckpoint.read(CheckpointFixtures.url("torch/bigendian.bin")), kind: .unsupported,
                        path: "bigendian.bin", ["byteorder", "big", "little-endian"])
    }

    func testNonTensorEntryIsRefused() {
        assertFormatError(try TorchCheckpoint.read(CheckpointFixtures.url("torch/not_tensor.bin")), kind: .malformed,
                        path: "not_tensor.bin", ["'step'", "not a tensor"])
    }

    // MARK: - Damaged archives, derived here from a good one

    private func damaged(_ name: String, _ edit: (inout [UInt8]) throws -> Void) throws -> URL {
        var bytes = [UInt8](try Data(contentsOf: CheckpointFixtures.url("torch/assorted.bin")))
        try edit(&bytes)
        let url = scratch.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    /// Every offset where `needle` occurs in `bytes`.
    private func occurrences(of needle: String, in bytes: [UInt8]) -> [Int] {
        let pattern = Array(needle.utf8)
        return (0...(bytes.count - pattern.count)).filter { Array(bytes[$0..<($0 + pattern.count)]) == pattern }
    }

    func testTruncatedZipIsRefused() throws {
        let half = try damaged("half.bin") { $0.removeLast($0.count / 2) }
        assertFormatError(try TorchCheckpoint.read(half), kind: .truncated, path: "half.bin", ["truncated"])
        let clipped = try damaged("clipped.bin") { $0.removeLast(10) }
        assertFormatError(try TorchCheckpoint.read(clipped), kind: .truncated, path: "clipped.bin", ["truncated"])
    }

    func testRealCheckpointCutShortIsRefused() throws {
        try CheckpointFixtures.requirePythiaMini()
        let source = CheckpointFixtures.pythiaMini.appendingPathComponent("step1000/pytorch_model.bin")
        let handle = try FileHandle(forReadingFrom: source)
        let head = try handle.read(upToCount: 3_000_000) ?? Data()
        try handle.close()
        let cut = scratch.appendingPathComponent("pytorch_model.bin")
        try head.write(to: cut)
        assertFormatError(try TorchCheckpoint.read(cut), kind: .truncated, path: "pytorch_model.bin", ["truncated"])
    }

    func testCorruptPickleFailsCRC() throws {
        let directory = try ZipDirectory(MappedFile(CheckpointFixtures.url("torch/assorted.bin")))
        let pickle = try XCTUnwrap(directory.entries["assorted/data.pkl"])
        let url = try damaged("corrupt.bin") { bytes in
            for i in (pickle.dataOffset + 20)..<(pickle.dataOffset + 40) { bytes[i] ^= 0x5A }
        }
        assertFormatError(try TorchCheckpoint.read(url), kind: .corrupt, path: "corrupt.bin", ["data.pkl", "CRC"])
    }

    /// A flipped bit in a storage (the weights themselves) is caught by the entry's CRC-32.
    func testCorruptStorageFailsCRC() throws {
        let directory = try ZipDirectory(MappedFile(CheckpointFixtures.url("torch/assorted.bin")))
        let storage = try XCTUnwrap(directory.entries.values.filter { $0.name.contains("/data/") && $0.size > 0 }.min { $0.name < $1.name })
        let url = try damaged("flipped.bin") { bytes in bytes[storage.dataOffset] ^= 0x01 }
        assertFormatError(try TorchCheckpoint.read(url), kind: .corrupt, path: "flipped.bin", ["storage entry", "CRC"])
    }

    func testMissingDataPklIsRefused() throws {
        let url = try damaged("nopickle.bin") { bytes in
            for offset in occurrences(of: "assorted/data.pkl", in: bytes) { bytes[offset + 16] = UInt8(ascii: "x") }
        }
        assertFormatError(try TorchCheckpoint.read(url), kind: .malformed, path: "nopickle.bin", ["data.pkl"])
    }

    func testMissingStorageIsRefused() throws {
        let url = try damaged("nostorage.bin") { bytes in
            let hits = occurrences(of: "assorted/data/0", in: bytes)
            XCTAssertEqual(hits.count, 2, "local and central headers")
            for offset in hits { bytes[offset + 14] = UInt8(ascii: "Z") }
        }
        assertFormatError(try TorchCheckpoint.read(url), kind: .malformed, path: "nostorage.bin", ["storage '0'", "missing"])
    }

    func testNotAZipIsRefused() throws {
        let url = scratch.appendingPathComponent("pytorch_model.bin")
        try Data("this is not a checkpoint at all, just text that is long enough".utf8).write(to: url)
        assertFormatError(try TorchCheckpoint.read(url), kind: .malformed, path: "pytorch_model.bin", ["not a zip"])
        let empty = scratch.appendingPathComponent("empty.bin")
        try Data().write(to: empty)
        assertFormatError(try TorchCheckpoint.read(empty), kind: .malformed, path: "empty.bin", ["not a zip"])
    }

    /// A pickle cut anywhere stops with an error, never a crash or a silent partial dict.
    func testTruncatedPickleIsRefusedAtEveryLength() throws {
        let file = try MappedFile(CheckpointFixtures.url("torch/assorted.bin"))
        let directory = try ZipDirectory(file)
        let entry = try XCTUnwrap(directory.entries["assorted/data.pkl"])
        let pickle = try directory.contents(of: entry)
        let resolver = TorchResolver(file: file, directory: directory, prefix: "assorted/")
        XCTAssertNoThrow(try Unpickler.load(pickle, resolver: resolver))
        for length in 0..<pickle.count {
            XCTAssertThrowsError(try Unpickler.load(Array(pickle[..<length]), resolver: resolver), "length \(length)") { error in
                XCTAssert(error is PickleError, "length \(length): \(error)")
            }
        }
    }

    /// 10⁶ nested TUPLE1s or 5·10⁵ nested LISTs are refused as they are built, not by a stack
    /// overflow while the error message or the values' teardown recurses through them.
    func testDeeplyNestedPicklesAreRefused() throws {
        let file = try MappedFile(CheckpointFixtures.url("torch/assorted.bin"))
        let resolver = TorchResolver(file: file, directory: try ZipDirectory(file), prefix: "assorted/")
        let tuples: [UInt8] = [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 1_000_000) + [0x2E]
        let lists: [UInt8] = [0x80, 0x02] + [UInt8](repeating: 0x28, count: 500_000) + [0x5D]
            + [UInt8](repeating: 0x6C, count: 500_000) + [0x2E]
        for (name, pickle) in [("tuples", tuples), ("lists", lists)] {
            XCTAssertThrowsError(try Unpickler.load(pickle, resolver: resolver), name) { error in
                XCTAssertTrue("\(error)".contains("nest deeper than \(Unpickler.maxDepth)"), "\(name): \(error)")
            }
        }
        // Shallow nesting is fine: 10 tuples deep.
        let shallow: [UInt8] = [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 10) + [0x2E]
        XCTAssertNoThrow(try Unpickler.load(shallow, resolver: resolver))
    }

    /// Cut at any length or with any byte flipped, an archive either loads with every tensor inside
    /// the file or fails with a NeoXError: never a crash (the test process would die).
    func testDamagedArchivesNeverCrash() throws {
        let original = [UInt8](try Data(contentsOf: CheckpointFixtures.url("torch/assorted.bin")))
        // Thousands of small rewrites: use RAM-backed /dev/shm when there is one (a disk-backed
        // temporary folder costs milliseconds per write on some machines).
        let shm = URL(fileURLWithPath: "/dev/shm")
        let url = (FileManager.default.isWritableFile(atPath: shm.path) ? shm : scratch)
            .appendingPathComponent("neox-fuzz-\(UUID().uuidString).bin")
        defer { try? FileManager.default.removeItem(at: url) }
        func check(_ bytes: [UInt8], _ label: String) throws {
            // Plain POSIX writes: Foundation's Data.write costs milliseconds per call here.
            let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
            if fd < 0 || written != bytes.count { return XCTFail("\(label): cannot write \(url.path)") }
            do {
                for entry in try TorchCheckpoint.read(url).values where entry.offset + entry.byteCount > bytes.count {
                    XCTFail("\(label): '\(entry.name)' runs past the end of the file")
                }
            } catch is FormatError {
            } catch {
                XCTFail("\(label): unexpected error \(error)")
            }
        }
        // Sampled sparsely through the data, densely through the central directory at the end.
        let tail = max(0, original.count - 2048)
        for length in Array(stride(from: 0, to: tail, by: 11)) + Array(stride(from: tail, to: original.count, by: 1)) {
            try check(Array(original[..<length]), "cut at \(length)")
        }
        for position in Array(stride(from: 0, to: tail, by: 5)) + Array(stride(from: tail, to: original.count, by: 1)) {
            var bytes = original
            bytes[position] ^= 0xFF
            try check(bytes, "flip at \(position)")
        }
    }

    // MARK: - Sharded .bin damage

    private func copyOfShardedBin() throws -> URL {
        let copy = scratch.appendingPathComponent("tiny-sharded-bin")
        try FileManager.default.copyItem(at: CheckpointFixtures.url("tiny-sharded-bin"), to: copy)
        return copy
    }

    func testMissingShardFileIsRefused() throws {
        let directory = try copyOfShardedBin()
        let shards = try XCTUnwrap(CheckpointFixtures.json("tiny-sharded-bin.json")["shards"] as? [String])
        try FileManager.default.removeItem(at: directory.appendingPathComponent(shards[1]))
        assertFormatError(try Checkpoint(directory: directory), kind: .notFound, path: shards[1], ["shard", "missing"])
    }

    func testIndexListingAbsentTensorIsRefused() throws {
        let directory = try copyOfShardedBin()
        let indexURL = directory.appendingPathComponent("pytorch_model.bin.index.json")
        var index = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: indexURL)) as? [String: Any])
        var map = try XCTUnwrap(index["weight_map"] as? [String: String])
        let shard = try XCTUnwrap(map.values.sorted().first)
        map["gpt_neox.layers.9.phantom.weight"] = shard
        index["weight_map"] = map
        try JSONSerialization.data(withJSONObject: index).write(to: indexURL)
        assertFormatError(try Checkpoint(directory: directory), kind: .missingTensor, path: shard, ["gpt_neox.layers.9.phantom.weight", "not"])
    }
}
