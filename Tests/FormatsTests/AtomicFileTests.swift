import Foundation
import XCTest
@testable import Formats

/// `AtomicFile` (the one atomic-write routine) and `OutputFile` (the one writer of raw bytes).
final class AtomicFileTests: XCTestCase {
    func testAtomicWriteReplacesAndLeavesNoTemporaryFiles() throws {
        let directory = try makeScratchDirectory("neox-atomic")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("out.txt")
        try AtomicFile.write("first", to: url)
        try AtomicFile.write("second", to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "second")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["out.txt"])
        XCTAssertThrowsError(try AtomicFile.write("x", to: directory.appendingPathComponent("missing/out.txt"))) {
            XCTAssertEqual(($0 as? FormatError)?.kind, .io)
        }
    }

    func testFailedProducerLeavesTheOldFileAndNoTemporary() throws {
        struct Stop: Error {}
        let directory = try makeScratchDirectory("neox-atomic")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("out.bin")
        try AtomicFile.write("kept", to: url)
        XCTAssertThrowsError(try AtomicFile.write(to: url) { file in
            try file.write(Data("partial".utf8))
            throw Stop()
        }) { XCTAssertTrue($0 is Stop) }
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "kept")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["out.bin"])
    }

    func testOutputFileClosesOnceAndRefusesWritesAfterClose() throws {
        let directory = try makeScratchDirectory("neox-output")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = try OutputFile(creating: directory.appendingPathComponent("a.f32"))
        try file.write(Data([1, 2, 3]))
        try file.synchronize()
        file.close()
        file.close()   // idempotent: never closes a descriptor number someone else now owns
        XCTAssertThrowsError(try file.write(Data([4]))) { XCTAssertEqual(($0 as? FormatError)?.kind, .io) }
        XCTAssertEqual(try Data(contentsOf: directory.appendingPathComponent("a.f32")), Data([1, 2, 3]))
        XCTAssertThrowsError(try OutputFile(creating: directory.appendingPathComponent("a.f32"), exclusive: true))
    }
}
