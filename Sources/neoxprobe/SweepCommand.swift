import ArgumentParser

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sweep", abstract: "(not yet implemented)")
    func run() throws { throw ValidationError("'sweep' is not implemented yet") }
}
