import Foundation

/// Sizes checked before the sweep allocates them: a hostile count (a batch size of 10¹², a CKA
/// minibatch of 10¹² rows) must be an error that names the setting, never an arithmetic-overflow
/// trap or an allocation abort part-way through a run.
enum SweepMemory {
    /// The product of non-negative `factors`, or nil when it overflows `Int`.
    static func product(_ factors: [Int]) -> Int? {
        var total = 1
        for factor in factors {
            let (next, overflow) = total.multipliedReportingOverflow(by: factor)
            if overflow { return nil }
            total = next
        }
        return total
    }

    /// The sum of byte counts, nil when one is nil or the sum overflows `Int`.
    static func sum(_ terms: [Int?]) -> Int? {
        var total = 0
        for term in terms {
            guard let term else { return nil }
            let (next, overflow) = total.addingReportingOverflow(term)
            if overflow { return nil }
            total = next
        }
        return total
    }

    /// Throws unless `bytes` (nil: more than `Int.max`) fits in this machine's physical memory.
    static func require(_ bytes: Int?, for what: String, option: SweepOptions.Field) throws {
        let available = ProcessInfo.processInfo.physicalMemory
        if let bytes, bytes >= 0, UInt64(bytes) <= available { return }
        let size = bytes.map { gibibytes(UInt64($0)) } ?? "more than \(Int.max) bytes"
        throw SweepError(.invalidOption, option: option, "\(what) would take \(size), more than this machine's \(gibibytes(available)) of memory")
    }

    static func gibibytes(_ bytes: UInt64) -> String {
        String(format: "%.1f GiB", Double(bytes) / Double(1 << 30))
    }
}
