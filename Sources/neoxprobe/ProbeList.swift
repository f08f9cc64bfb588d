import ArgumentParser
import Foundation
import Sweep

/// `--probes outliers,cka,weights,perplexity,lambada`: the sweep's measurements, in canonical order.
struct ProbeList: ExpressibleByArgument, CustomStringConvertible, Equatable, Sendable {
    let probes: [SweepProbe]

    init(_ probes: [SweepProbe]) { self.probes = Set(probes).sorted() }

    static let valid = SweepProbe.allCases.map(\.rawValue).joined(separator: ", ")

    static func parse(_ text: String) throws -> ProbeList {
        var probes: [SweepProbe] = []
        for item in text.split(separator: ",") {
            let name = item.trimmingCharacters(in: .whitespaces).lowercased()
            if name.isEmpty { continue }
            guard let probe = SweepProbe(rawValue: name) else {
                throw ValidationError("unknown probe '\(name)'; valid probes: \(valid)")
            }
            probes.append(probe)
        }
        guard !probes.isEmpty else { throw ValidationError("no probes given; valid probes: \(valid)") }
        return ProbeList(probes)
    }

    init?(argument: String) {
        guard let list = try? Self.parse(argument) else { return nil }
        self = list
    }

    var description: String { probes.map(\.rawValue).joined(separator: ",") }
}
