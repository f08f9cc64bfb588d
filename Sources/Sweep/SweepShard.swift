import Foundation

/// One share of a sweep's checkpoints, for running a sweep as `count` independent jobs (the
/// tasks of a Slurm job array).
///
/// Shard `index` of `count` (0-based, as `SLURM_ARRAY_TASK_ID` counts) takes a contiguous run of
/// the selected steps; the runs are cut where the running total of checkpoint bytes on disk is
/// nearest to `k/count` of the whole, so shards get about the same amount of weights to load and
/// measure, and the split depends only on the selection and the file sizes: every task computes
/// the same partition without talking to the others. Contiguous runs keep each step's
/// predecessor (which `msd` compares with) mostly in the same shard; the predecessor is read from
/// disk either way.
///
/// Everything that depends on the whole selection is computed from the whole selection in every
/// shard: the CKA reference step (the last selected step), the weights reference, the previous
/// checkpoint of each step. So a shard's rows are exactly the rows a single sweep writes for
/// those steps, and `SweepMerge` can put the shards back together byte for byte.
public struct SweepShard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw SweepError(.invalidOption, option: .shard, "shard count \(count) is below 1") }
        guard count <= Self.maxCount else { throw SweepError(.invalidOption, option: .shard, "shard count \(count) exceeds the maximum of \(Self.maxCount)") }
        guard (0..<count).contains(index) else {
            throw SweepError(.invalidOption, option: .shard, "shard index \(index) is outside 0..<\(count) (indices count from 0, as SLURM_ARRAY_TASK_ID does)")
        }
        self.index = index
        self.count = count
    }

    /// More shards than this is a mistake (Slurm's default MaxArraySize is 1001).
    public static let maxCount = 100_000

    public var description: String { "\(index)/\(count)" }

    /// `i/n`, or `slurm` for `SLURM_ARRAY_TASK_ID`/`SLURM_ARRAY_TASK_COUNT` from `environment`.
    public static func parse(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SweepShard {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "slurm" {
            guard let id = environment["SLURM_ARRAY_TASK_ID"], let total = environment["SLURM_ARRAY_TASK_COUNT"] else {
                throw SweepError(.invalidOption, option: .shard,
                                 "shard 'slurm' reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, and they are not set (not inside a Slurm job array?)")
            }
            guard let index = Int(id), let count = Int(total) else {
                throw SweepError(.invalidOption, option: .shard, "SLURM_ARRAY_TASK_ID '\(id)' / SLURM_ARRAY_TASK_COUNT '\(total)' are not integers")
            }
            // An array submitted as --array=0-(n-1) counts its tasks from 0; one submitted with another
            // offset would silently skip steps, so the minimum is checked when Slurm gives it.
            if let minimum = environment["SLURM_ARRAY_TASK_MIN"], minimum != "0" {
                throw SweepError(.invalidOption, option: .shard, "the job array starts at task \(minimum); submit it as --array=0-\(count - 1)")
            }
            return try SweepShard(index: index, count: count)
        }
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else {
            throw SweepError(.invalidOption, option: .shard, "'\(text)' is not a shard: expected i/n (e.g. 0/3) or slurm")
        }
        return try SweepShard(index: index, count: count)
    }

    /// This shard's checkpoints of `selected` (ascending), cut by `sizes` (bytes per checkpoint,
    /// same order). Empty when there are fewer checkpoints than shards and this one gets none.
    public func share<T>(of selected: [T], sizes: [Int]) -> [T] {
        let bounds = Self.boundaries(sizes: sizes, count: count)
        return Array(selected[bounds[index]..<bounds[index + 1]])
    }

    /// `count + 1` cut points into `sizes`: shard k takes `bounds[k]..<bounds[k+1]`. Cut k is the
    /// position whose running total is nearest to k/count of the whole (ties to the earlier cut),
    /// never before the previous cut, and leaving at least one checkpoint for each later shard
    /// while there are checkpoints left.
    static func boundaries(sizes: [Int], count: Int) -> [Int] {
        let n = sizes.count
        let weights = sizes.map { Double(max($0, 1)) }
        var prefix = [0.0]
        for w in weights { prefix.append(prefix.last! + w) }
        let total = prefix.last!
        var bounds = [0]
        for k in 1..<count {
            let target = total * Double(k) / Double(count)
            let minimumEach = n >= count ? 1 : 0
            let low = min(bounds.last! + minimumEach, n)
            let high = max(low, min(n, n - (count - k) * minimumEach))
            var best = low
            for cut in low...high where abs(prefix[cut] - target) < abs(prefix[best] - target) { best = cut }
            bounds.append(best)
        }
        bounds.append(n)
        return bounds
    }

    /// Bytes on disk of a checkpoint directory's files (symlinks followed, as in a Hugging Face
    /// cache snapshot), the measure the shards are balanced by.
    static func size(of directory: URL) -> Int {
        let fileManager = FileManager.default
        let names = (try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.reduce(0) { total, name in
            let path = directory.appendingPathComponent(name).resolvingSymlinksInPath().path
            let size = (try? fileManager.attributesOfItem(atPath: path))?[.size] as? NSNumber
            return total + (size?.intValue ?? 0)
        }
    }
}
