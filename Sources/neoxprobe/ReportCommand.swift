import ArgumentParser
import Foundation
import Report

/// `neoxprobe report RESULTS`: turns a sweep's metrics.csv into a self-contained report.html.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Render RESULTS/metrics.csv (and RESULTS/run.json) as a self-contained RESULTS/report.html.")

    @Argument(help: "The results directory a sweep wrote (must contain metrics.csv).")
    var results: String

    @Option(name: .shortAndLong, help: "Where to write the HTML (default: RESULTS/report.html).")
    var output: String?

    func run() throws {
        let directory = URL(fileURLWithPath: results)
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("metrics.csv").path) else {
            throw CommandFailure("no metrics.csv in \(directory.path) (give the results directory a sweep wrote)")
        }
        let written = try HTMLReport.generate(results: directory, output: output.map { URL(fileURLWithPath: $0) })
        print("wrote \(written.path)")
    }
}
