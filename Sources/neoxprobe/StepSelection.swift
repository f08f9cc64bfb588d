import ArgumentParser
import Foundation

/// `--steps all` or `--steps 0,512,2000` (a `stepN` spelling is accepted too): the checkpoints of
/// a suite to measure. Which steps exist is known only once the suite is opened.
enum StepSelection: ExpressibleByArgument, CustomStringConvertible, Equatable, Sendable {
    case all
    /// Ascending, without repeats.
    case steps([Int])

    static func parse(_ text: String) throws -> StepSelection {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "all" { return .all }
        var steps: Set<Int> = []
        for item in trimmed.split(separator: ",") {
            let name = item.trimmingCharacters(in: .whitespaces)
            if name.isEmpty { continue }
            let digits = name.hasPrefix("step") ? String(name.dropFirst(4)) : name
            guard let step = Int(digits), step >= 0 else {
                throw ValidationError("'\(name)' is not a step (give all, or steps from 0 to \(Int.max) such as 0,512,2000)")
            }
            steps.insert(step)
        }
        guard !steps.isEmpty else { throw ValidationError("no steps given (give all, or e.g. 0,512,2000)") }
        return .steps(steps.sorted())
    }

    init?(argument: String) {
        guard let selection = try? Self.parse(argument) else { return nil }
        self = selection
    }

    /// The text `SweepOptions.steps` takes: `all` or the steps joined by commas.
    var description: String {
        switch self {
        case .all: return "all"
        case .steps(let steps): return steps.map(String.init).joined(separator: ",")
        }
    }
}
