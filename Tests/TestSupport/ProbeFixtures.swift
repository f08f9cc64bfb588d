import Foundation
import XCTest

/// Paths and fixtures shared by the statistics, evaluation, sweep and report tests
/// (`Tests/Fixtures/probes`, written by `generate_probes.py`).
public enum ProbeFixtures {
    public static let directory = RepositoryPaths.fixtures("probes")
    /// The shared real data (`../shared` from the repository root, as the README says).
    public static let shared = RepositoryPaths.shared
    public static let pythiaMini = shared.appendingPathComponent("models/pythia-mini")

    public static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The synthetic arrays written by generate_probes.py, by name, with their shapes.
    public struct Synthetic {
        public var arrays: [String: (values: [Float], shape: [Int])] = [:]
        public var expected: [String: Any]

        public init() throws {
            let manifest = try ProbeFixtures.json("synthetic.json")
            expected = try XCTUnwrap(manifest["expected"] as? [String: Any])
            let layout = try XCTUnwrap(manifest["layout"] as? [String: [String: Any]])
            let data = try Data(contentsOf: ProbeFixtures.directory.appendingPathComponent("synthetic.bin"))
            let all: [Float] = data.withUnsafeBytes { raw in
                (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
            for (name, entry) in layout {
                let offset = try XCTUnwrap(entry["offset"] as? Int)
                let shape = try XCTUnwrap(entry["shape"] as? [Int])
                let count = shape.reduce(1, *)
                arrays[name] = (Array(all[offset..<(offset + count)]), shape)
            }
        }

        public func array(_ name: String) throws -> (values: [Float], shape: [Int]) { try XCTUnwrap(arrays[name], "no array \(name)") }
        public func number(_ key: String, in dictionary: [String: Any]? = nil) throws -> Double {
            let source = dictionary ?? expected
            return try XCTUnwrap((source[key] as? NSNumber)?.doubleValue, "no number \(key)")
        }
        public func dictionary(_ key: String) throws -> [String: Any] { try XCTUnwrap(expected[key] as? [String: Any], "no object \(key)") }
    }
}

/// Agreement to 1e-4 relative, or 1e-6 absolute near zero.
public func assertClose(_ actual: Double, _ expected: Double, _ message: @autoclosure () -> String = "",
                 relative: Double = 1e-4, absolute: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
    let difference = abs(actual - expected)
    if difference <= absolute || difference <= relative * abs(expected) { return }
    XCTFail("\(message()): got \(actual), expected \(expected) (difference \(difference))", file: file, line: line)
}
