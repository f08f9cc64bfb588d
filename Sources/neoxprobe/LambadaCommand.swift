import ArgumentParser

struct LambadaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lambada", abstract: "(not yet implemented)")
    func run() throws { throw ValidationError("'lambada' is not implemented yet") }
}
