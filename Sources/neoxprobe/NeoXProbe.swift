import ArgumentParser

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
}

enum NeoXProbeVersion {
    static let string = "0.1.0"
}
