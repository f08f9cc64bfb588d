import Foundation
import TestSupport
import XCTest

/// The README's module graph is the one `Package.swift` declares, and no module grows past
/// 1.5k lines without the README saying why: the layout stays documented as it changes.
final class ModuleGraphTests: XCTestCase {
    /// Non-test targets and their dependencies, as SwiftPM reads the manifest.
    private func declaredGraph() throws -> [String: Set<String>] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("neoxprobe-dump-\(UUID().uuidString)")
        process.arguments = ["swift", "package", "--scratch-path", scratch.path, "dump-package"]
        process.currentDirectoryURL = RepositoryPaths.root
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: scratch)
        XCTAssertEqual(process.terminationStatus, 0, "swift package dump-package failed")
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        var graph: [String: Set<String>] = [:]
        for target in try XCTUnwrap(manifest["targets"] as? [[String: Any]]) {
            guard let name = target["name"] as? String, target["type"] as? String != "test", name != "TestSupport" else { continue }
            let dependencies = (target["dependencies"] as? [[String: [Any]]] ?? []).compactMap { entry in
                (entry["byName"] ?? entry["target"] ?? entry["product"])?.first as? String
            }
            graph[name] = Set(dependencies)
        }
        return graph
    }

    /// The table rows `| `Name` → A, B | … |` between the README's module-graph markers (several
    /// names may share a row; `—` means no dependencies).
    private func documentedGraph() throws -> [String: Set<String>] {
        let readme = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try XCTUnwrap(readme.range(of: "<!-- module graph -->"), "README has no <!-- module graph --> block")
        let end = try XCTUnwrap(readme.range(of: "<!-- /module graph -->"), "README's module graph block is not closed")
        var graph: [String: Set<String>] = [:]
        func names(_ text: String) -> [String] {
            text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "") }
                .filter { !$0.isEmpty && $0 != "—" }
        }
        for line in readme[start.upperBound..<end.lowerBound].split(separator: "\n") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false)
            guard cells.count > 2, cells[1].contains("`") else { continue }
            let parts = cells[1].components(separatedBy: "→")
            guard parts.count == 2 else { continue }
            for name in names(parts[0]) { graph[name] = Set(names(parts[1])) }
        }
        return graph
    }

    func testReadmeModuleGraphMatchesPackageSwift() throws {
        let declared = try declaredGraph(), documented = try documentedGraph()
        XCTAssertFalse(declared.isEmpty)
        for name in Set(declared.keys).union(documented.keys).sorted() {
            XCTAssertEqual(documented[name], declared[name], "README module graph for \(name) (Package.swift says \(declared[name].map { $0.sorted() } ?? []))")
        }
    }

    func testLargeModulesAreExplainedInTheReadme() throws {
        let readme = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("README.md"), encoding: .utf8)
        let sources = RepositoryPaths.root.appendingPathComponent("Sources")
        for module in try FileManager.default.contentsOfDirectory(atPath: sources.path).sorted() {
            let folder = sources.appendingPathComponent(module)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            let lines = try files.filter { $0.hasSuffix(".swift") }.reduce(0) { total, file in
                total + (try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)).split(separator: "\n", omittingEmptySubsequences: false).count
            }
            if lines > 1500 {
                XCTAssertTrue(readme.contains("`\(module)` is above 1.5k lines"),
                              "Sources/\(module) has \(lines) lines; the README must say why (\"`\(module)` is above 1.5k lines …\")")
            }
        }
    }
}
