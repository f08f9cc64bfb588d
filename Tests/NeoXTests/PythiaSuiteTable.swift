import Formats
import Foundation
import TestSupport

/// The real Pythia suite's config shapes (70m … 12b), read from the committed table
/// `Tests/Fixtures/pythia-suite-configs.json` (also what bench/scale/make_checkpoint.py generates from).
struct PythiaSuiteTable {
    static let url = RepositoryPaths.root.appendingPathComponent("Tests/Fixtures/pythia-suite-configs.json")
    static let sizes = ["70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"]
    let common: [String: Any]
    let entries: [String: [String: Any]]

    static func load() throws -> PythiaSuiteTable {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return PythiaSuiteTable(common: json["common"] as! [String: Any], entries: json["sizes"] as! [String: [String: Any]])
    }

    /// The `config.json` of `size` as the suite publishes it.
    func configJSON(_ size: String) -> [String: Any] {
        var fields = common
        fields.merge(entries[size]!) { $1 }
        return fields
    }

    /// `size` parsed by the engine's own config reader (validation included).
    func config(_ size: String) throws -> NeoXConfig {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pythia-config-\(size)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("config.json")
        try JSONSerialization.data(withJSONObject: configJSON(size)).write(to: file)
        return try NeoXConfig.load(contentsOf: file)
    }
}
