import Formats
import Foundation

/// One axis of a selection into a hook's activation, written as a Python index: `:` (every
/// index), `i` (one index; the axis is dropped from the selection's shape, as NumPy drops it),
/// `a:b` (a half-open range, either end optional). Negative indices count from the end.
public enum AxisSelection: Sendable, Equatable, CustomStringConvertible {
    case all
    case index(Int)
    case range(Int?, Int?)

    public var description: String {
        switch self {
        case .all: return ":"
        case .index(let i): return "\(i)"
        case .range(let a, let b): return "\(a.map(String.init) ?? ""):\(b.map(String.init) ?? "")"
        }
    }
}

/// Which elements of a hook's activation an intervention touches: one `AxisSelection` per leading
/// axis (`[:, :, 5]` = head 5 of every position of `attn.hook_z`); axes not named are taken whole.
public struct HookSelection: Sendable, Equatable, CustomStringConvertible {
    public let axes: [AxisSelection]

    /// Every element.
    public static let all = HookSelection(axes: [])

    public init(axes: [AxisSelection]) { self.axes = axes }

    /// Parses `:, :, 5`, `[:, 3:7]` or `[-1]` (brackets optional, whitespace ignored).
    public init(parsing text: String) throws {
        var body = Substring(text.filter { !$0.isWhitespace })
        if body.hasPrefix("[") {
            guard body.hasSuffix("]") else { throw NeoXError(.invalidIntervention, "index '\(text)' opens '[' but does not end with ']'") }
            body = body.dropFirst().dropLast()
        }
        if body.isEmpty { self = .all; return }
        var axes: [AxisSelection] = []
        for part in body.split(separator: ",", omittingEmptySubsequences: false) {
            func bound(_ s: Substring) throws -> Int? {
                if s.isEmpty { return nil }
                guard let value = Int(s), abs(value) <= 1 << 40 else {
                    throw NeoXError(.invalidIntervention, "index '\(text)': '\(s)' is not an integer index")
                }
                return value
            }
            if part == ":" { axes.append(.all); continue }
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            switch pieces.count {
            case 1:
                guard let i = try bound(pieces[0]) else { throw NeoXError(.invalidIntervention, "index '\(text)' has an empty axis") }
                axes.append(.index(i))
            case 2: axes.append(.range(try bound(pieces[0]), try bound(pieces[1])))
            default: throw NeoXError(.invalidIntervention, "index '\(text)': '\(part)' has a step or too many ':' (only ':', 'i' and 'a:b' are supported)")
            }
        }
        self.axes = axes
    }

    public var description: String { axes.isEmpty ? "" : "[" + axes.map(\.description).joined(separator: ", ") + "]" }

    /// One range per axis of `shape`, and the selection's own shape (integer-indexed axes
    /// dropped). An index outside an axis, or more axes than the hook has, is an error naming `hook`.
    public func resolve(_ shape: [Int], hook: String) throws -> (ranges: [Range<Int>], shape: [Int]) {
        guard axes.count <= shape.count else {
            throw NeoXError(.invalidIntervention, "\(hook)\(self) names \(axes.count) axes, but the hook has \(shape.count) (shape \(shape))")
        }
        var ranges: [Range<Int>] = [], kept: [Int] = []
        for (axis, size) in shape.enumerated() {
            let selection = axis < axes.count ? axes[axis] : .all
            switch selection {
            case .all:
                ranges.append(0..<size); kept.append(size)
            case .index(let raw):
                let i = raw < 0 ? raw + size : raw
                guard (0..<size).contains(i) else {
                    throw NeoXError(.invalidIntervention, "\(hook)\(self): index \(raw) is outside axis \(axis) of size \(size) (shape \(shape))")
                }
                ranges.append(i..<(i + 1))
            case .range(let a, let b):
                func clamp(_ v: Int?, _ fallback: Int) -> Int { v.map { min(size, max(0, $0 < 0 ? $0 + size : $0)) } ?? fallback }
                let lo = clamp(a, 0), hi = clamp(b, size)
                guard lo < hi else {
                    throw NeoXError(.invalidIntervention, "\(hook)\(self): range \(selection) of axis \(axis) (size \(size)) selects nothing")
                }
                ranges.append(lo..<hi); kept.append(hi - lo)
            }
        }
        return (ranges, kept)
    }
}

/// What an intervention does to the selected elements of its hook (TransformerLens's
/// `run_with_hooks` editing functions), before the value flows on through the rest of the pass.
public enum InterventionAction: Sendable {
    /// Zero ablation.
    case zero
    /// Mean ablation: each selected element becomes the mean, over the batch and the positions
    /// (the hook's `tokenAxes`), of this same pass's activation at that element's other coordinates.
    case mean
    /// Activation patching: selected elements are replaced by the same elements of this tensor,
    /// which must have the hook's full shape (a cached activation of another run).
    case patch(Tensor)
    /// Adds this tensor, broadcast NumPy-style over the selection: its shape must equal the
    /// selection's trailing axes (`[d]` adds a steering vector to every position).
    case add(Tensor)
    /// Any edit: the whole activation (shape, values), edited in place. Only with the `.all` selection.
    case custom(@Sendable (_ shape: [Int], _ values: UnsafeMutableBufferPointer<Float>) throws -> Void)

    var name: String {
        switch self {
        case .zero: return "zero"
        case .mean: return "mean"
        case .patch: return "patch"
        case .add: return "add"
        case .custom: return "custom"
        }
    }
}

/// An edit of one hook during a forward pass: the values the pass carries on with (and the
/// values captured or observed at that hook) are the edited ones.
/// `Intervention(.block(3, .z), HookSelection(axes: [.all, .all, .index(5)]), .zero)` zero-ablates head 5 of block 3.
public struct Intervention: Sendable, CustomStringConvertible {
    public let point: HookPoint
    public let selection: HookSelection
    public let action: InterventionAction

    public init(_ point: HookPoint, _ selection: HookSelection = .all, _ action: InterventionAction) {
        self.point = point
        self.selection = selection
        self.action = action
    }

    public var description: String { "\(point.name)\(selection) \(action.name)" }

    /// Parses `blocks.3.attn.hook_z[:, :, 5]` into its hook and selection.
    public static func parseTarget(_ text: String) throws -> (HookPoint, HookSelection) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let bracket = trimmed.firstIndex(of: "[") ?? trimmed.endIndex
        let name = String(trimmed[..<bracket])
        guard let point = HookPoint(name: name) else {
            throw NeoXError(.unknownHook, "'\(name)' is not a hook name (e.g. blocks.0.attn.hook_z, blocks.3.hook_resid_post)")
        }
        return (point, try HookSelection(parsing: String(trimmed[bracket...])))
    }

    /// Edits `values` (the hook's activation, shape `shape`) in place.
    func apply(to values: UnsafeMutableBufferPointer<Float>, shape: [Int]) throws {
        let hook = point.name
        if case .custom(let edit) = action {
            guard selection.axes.isEmpty else {
                throw NeoXError(.invalidIntervention, "\(hook)\(selection): a custom edit takes the whole activation (no index)")
            }
            try edit(shape, values)
            return
        }
        let (ranges, selected) = try selection.resolve(shape, hook: hook)
        var strides = [Int](repeating: 1, count: shape.count)
        for axis in stride(from: shape.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * shape[axis + 1] }
        switch action {
        case .zero:
            forEachSelected(ranges, strides) { flat, _ in values[flat] = 0 }
        case .mean:
            // Means over the token axes at every other coordinate, in Float64.
            let tokenAxes = Set(point.tokenAxes.filter { $0 < shape.count })
            let reducedShape = shape.enumerated().map { tokenAxes.contains($0.offset) ? 1 : $0.element }
            var reducedStrides = [Int](repeating: 1, count: shape.count)
            for axis in stride(from: shape.count - 2, through: 0, by: -1) { reducedStrides[axis] = reducedStrides[axis + 1] * reducedShape[axis + 1] }
            let count = tokenAxes.reduce(1) { $0 * shape[$1] }
            var sums = [Double](repeating: 0, count: reducedShape.reduce(1, *))
            func reducedIndex(_ coordinates: [Int]) -> Int {
                var r = 0
                for axis in 0..<shape.count where !tokenAxes.contains(axis) { r += coordinates[axis] * reducedStrides[axis] }
                return r
            }
            forEachSelected(shape.map { 0..<$0 }, strides) { flat, coordinates in sums[reducedIndex(coordinates)] += Double(values[flat]) }
            forEachSelected(ranges, strides) { flat, coordinates in values[flat] = Float(sums[reducedIndex(coordinates)] / Double(count)) }
        case .patch(let source):
            guard source.shape == shape else {
                throw NeoXError(.invalidIntervention, "patch for \(hook) has shape \(source.shape), but the hook has \(shape) in this run")
            }
            // Scores hold −∞ at masked keys by definition; every other hook must be finite.
            let scores: Bool
            if case .block(_, .attnScores) = point { scores = true } else { scores = false }
            if !scores, let bad = source.data.firstIndex(where: { !$0.isFinite }) {
                throw NeoXError(.invalidIntervention, "patch for \(hook) holds a non-finite value at element \(bad)")
            }
            source.data.withUnsafeBufferPointer { src in forEachSelected(ranges, strides) { flat, _ in values[flat] = src[flat] } }
        case .add(let source):
            let keptAxes = ranges.indices.filter { axis in
                if axis < selection.axes.count, case .index = selection.axes[axis] { return false }
                return true
            }
            guard source.shape.count <= selected.count, Array(selected.suffix(source.shape.count)) == source.shape else {
                throw NeoXError(.invalidIntervention, "vector added to \(hook)\(selection) has shape \(source.shape); "
                    + "it must match the trailing axes of the selection, shape \(selected)")
            }
            if let bad = source.data.firstIndex(where: { !$0.isFinite }) {
                throw NeoXError(.invalidIntervention, "vector added to \(hook) holds a non-finite value at element \(bad)")
            }
            let broadcastAxes = Array(keptAxes.suffix(source.shape.count))
            var sourceStrides = [Int](repeating: 1, count: source.shape.count)
            for axis in stride(from: source.shape.count - 2, through: 0, by: -1) { sourceStrides[axis] = sourceStrides[axis + 1] * source.shape[axis + 1] }
            source.data.withUnsafeBufferPointer { src in
                forEachSelected(ranges, strides) { flat, coordinates in
                    var s = 0
                    for (j, axis) in broadcastAxes.enumerated() { s += (coordinates[axis] - ranges[axis].lowerBound) * sourceStrides[j] }
                    values[flat] += src[s]
                }
            }
        case .custom: break
        }
    }

    /// Calls `body(flat index, coordinates)` for every element of the box `ranges`, in row-major order.
    private func forEachSelected(_ ranges: [Range<Int>], _ strides: [Int], _ body: (Int, [Int]) -> Void) {
        guard !ranges.isEmpty, ranges.allSatisfy({ !$0.isEmpty }) else { return }
        var coordinates = ranges.map(\.lowerBound)
        let last = ranges.count - 1
        while true {
            var flat = 0
            for axis in 0..<last { flat += coordinates[axis] * strides[axis] }
            var c = coordinates
            for i in ranges[last] { c[last] = i; body(flat + i, c) }
            var axis = last - 1
            while axis >= 0 {
                coordinates[axis] += 1
                if coordinates[axis] < ranges[axis].upperBound { break }
                coordinates[axis] = ranges[axis].lowerBound
                axis -= 1
            }
            if axis < 0 { return }
        }
    }
}

/// The interventions of one pass, grouped by hook and checked against the model and the plan.
struct InterventionSet {
    private var byPoint: [HookPoint: [Intervention]] = [:]

    init(_ interventions: [Intervention], config: NeoXConfig, plan: ForwardPlan) throws {
        let available = Set(HookPoint.all(for: config))
        for intervention in interventions {
            let point = intervention.point
            guard point != .logits else {
                throw NeoXError(.invalidIntervention, "'logits' is the pass's output, not an activation an edit can flow on from")
            }
            guard available.contains(point) else {
                throw NeoXError(.unknownHook, "intervention on '\(point.name)': this model has no such hook")
            }
            if let layer = point.layer, layer >= plan.layers {
                throw NeoXError(.invalidIntervention, "intervention on '\(point.name)' would change nothing: the pass runs only blocks 0..<\(plan.layers) "
                    + "(capture a later hook or logits)")
            }
            if (point == .lnFinalScale || point == .lnFinalNormalized) && !plan.runsFinalNorm {
                throw NeoXError(.invalidIntervention, "intervention on '\(point.name)' would change nothing: the pass does not run the final LayerNorm "
                    + "(capture logits)")
            }
            byPoint[point, default: []].append(intervention)
        }
    }

    var isEmpty: Bool { byPoint.isEmpty }

    func touches(_ point: HookPoint) -> Bool { byPoint[point] != nil }

    /// Applies every intervention on `point`, in the order given.
    func apply(_ point: HookPoint, _ values: UnsafeMutablePointer<Float>, shape: [Int]) throws {
        guard let list = byPoint[point] else { return }
        let buffer = UnsafeMutableBufferPointer(start: values, count: shape.reduce(1, *))
        for intervention in list { try intervention.apply(to: buffer, shape: shape) }
    }
}
