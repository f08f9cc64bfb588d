import ArgumentParser

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "perplexity", abstract: "(not yet implemented)")
    func run() throws { throw ValidationError("'perplexity' is not implemented yet") }
}
