import ArgumentParser

struct BatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "batch", abstract: "(not yet implemented)")
    func run() throws { throw ValidationError("'batch' is not implemented yet") }
}
