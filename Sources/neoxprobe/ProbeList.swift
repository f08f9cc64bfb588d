import ArgumentParser
import Foundation
import Sweep

/// `--probes outliers,cka,weights,perplexity,lambada`: the sweep's measurements, in canonical order.
struct ProbeList: ExpressibleByArgument, CustomStringConvertible, Equatable, Sendable {
    let probes: [SweepProbe]

    init(_ probes: [SweepProbe]) { self.probes = Set(probes).sorted() }

    /// The sweep's own parser; its error becomes an argument error.
    static func parse(_ text: String) throws -> ProbeList {
        do { return ProbeList(try SweepProbe.parse(text)) } catch let error as SweepError {
            throw ValidationError(error.message)
        }
    }

    init?(argument: String) {
        guard let list = try? Self.parse(argument) else { return nil }
        self = list
    }

    var description: String { probes.map(\.rawValue).joined(separator: ",") }
}
