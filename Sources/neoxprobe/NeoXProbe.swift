import ArgumentParser
import Foundation

/// The `neoxprobe` command: one subcommand per job, each in its own file.
@main
struct NeoXProbe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neoxprobe",
        abstract: "Run GPT-NeoX (Pythia) models forward on the CPU and probe their internals across training.",
        version: NeoXProbeVersion.string,
        subcommands: [
            RunCommand.self, TokenizeCommand.self, BatchCommand.self,
            GradCommand.self,
            PerplexityCommand.self, LambadaCommand.self, SweepCommand.self, ReportCommand.self,
            GenerateCommand.self, FetchCommand.self, AuditCommand.self,
            MergeCommand.self, SlurmCommand.self,
        ]
    )

    /// ArgumentParser reports a missing required option before an unknown one, so `--modle x`
    /// would read "Missing expected argument '--model'". When parsing fails and the subcommand
    /// has no option of a name given, that is the error reported, with the subcommand's usage.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        var command: ParsableCommand
        do { command = try parseAsRoot(arguments) } catch {
            if let (subcommand, unknown) = unknownOption(in: arguments) {
                let usage = subcommand.usageString()
                let message = "Error: Unknown option '\(unknown)'\nUsage: \(usage.hasPrefix("neoxprobe") ? usage : "neoxprobe " + usage)\n"
                    + "  See 'neoxprobe \(subcommand._commandName) --help' for more information.\n"
                FileHandle.standardError.write(Data(message.utf8))
                Foundation.exit(ExitCode.validationFailure.rawValue)
            }
            exit(withError: error)
        }
        do { try command.run() } catch { exit(withError: error) }
    }

    /// The subcommand and the first `--name` in `arguments` it does not define (hidden options included).
    static func unknownOption(in arguments: [String]) -> (ParsableCommand.Type, String)? {
        guard let name = arguments.first,
              let subcommand = configuration.subcommands.first(where: { $0._commandName == name }) else { return nil }
        let help = subcommand.helpMessage(includeHidden: true, columns: 10_000)
        let words = help.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "-") }).map(String.init)
        let known = Set(words.filter { $0.hasPrefix("--") }).union(["--help", "--version"])
        for argument in arguments.dropFirst() {
            if argument == "--" { break }
            guard argument.hasPrefix("--") else { continue }
            let option = String(argument.split(separator: "=", maxSplits: 1)[0])
            if !known.contains(option) { return (subcommand, option) }
        }
        return nil
    }
}

enum NeoXProbeVersion {
    static let string = "0.1.0"
}
