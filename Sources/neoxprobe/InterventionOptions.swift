import ArgumentParser
import Formats
import Foundation
import NeoX

/// `run --ablate/--patch/--patch-hooks/--add`: edits of hooks during the pass (TransformerLens
/// `run_with_hooks`), turned into the engine's `Intervention`s. Only this file speaks of the flags.
struct InterventionOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Ablate part of a hook: 'NAME[INDEX]=zero' or '=mean' (mean over batch and positions), "
        + "INDEX as in Python over the hook's axes, e.g. 'blocks.3.attn.hook_z[:, :, 5]=zero'. Repeatable.", valueName: "spec"))
    var ablate: [String] = []

    @Option(name: .long, help: ArgumentHelp("Activation patching: replace hooks by a cached `run` output of another prompt "
        + "(same batch and length; every hook tensor in the file except logits, or those --patch-hooks names).", valueName: "file.safetensors"))
    var patch: String?

    @Option(name: .long, help: ArgumentHelp("With --patch: which of the file's hooks to patch, comma-separated globs or "
        + "'NAME[INDEX]' (an exact name) to patch part of one, e.g. 'blocks.2.hook_resid_pre[:, -1]'.", valueName: "list"))
    var patchHooks: String?

    @Option(name: .long, help: ArgumentHelp("Add a vector: 'NAME[INDEX]=FILE.safetensors', the file's one tensor (or the one named NAME) "
        + "broadcast over the selection (shape [d] adds to every position). Repeatable.", valueName: "spec"))
    var add: [String] = []

    var isEmpty: Bool { ablate.isEmpty && patch == nil && add.isEmpty }

    func validate() throws {
        if patchHooks != nil && patch == nil { throw ValidationError("--patch-hooks needs --patch FILE") }
        for spec in ablate where !spec.contains("=") { throw ValidationError("--ablate '\(spec)': expected NAME[INDEX]=zero or NAME[INDEX]=mean") }
        for spec in add where !spec.contains("=") { throw ValidationError("--add '\(spec)': expected NAME[INDEX]=FILE.safetensors") }
    }

    /// The interventions, in the order: ablations, patches, additions (each in the order given).
    func interventions(config: NeoXConfig) throws -> [Intervention] {
        var out: [Intervention] = []
        for spec in ablate {
            let (target, value) = Self.split(spec)
            let (point, selection) = try Self.target(target, flag: "--ablate")
            switch value {
            case "zero": out.append(Intervention(point, selection, .zero))
            case "mean": out.append(Intervention(point, selection, .mean))
            default: throw CommandFailure("--ablate '\(spec)': the ablation is '\(value)'; use zero or mean")
            }
        }
        if let patch { out += try patches(file: patch, config: config) }
        for spec in add {
            let (target, path) = Self.split(spec)
            let (point, selection) = try Self.target(target, flag: "--add")
            let tensors = try Self.read(path, flag: "--add")
            let tensor: Tensor
            if let named = tensors[point.name] { tensor = named } else if tensors.count == 1 { tensor = tensors.first!.value } else {
                throw CommandFailure("--add: \(path) holds \(tensors.count) tensors and none is named '\(point.name)'")
            }
            out.append(Intervention(point, selection, .add(tensor)))
        }
        return out
    }

    private func patches(file: String, config: NeoXConfig) throws -> [Intervention] {
        let tensors = try Self.read(file, flag: "--patch")
        let hooks = tensors.keys.compactMap { HookPoint(name: $0) }.filter { $0 != .logits }.sorted()
        guard !hooks.isEmpty else { throw CommandFailure("--patch: \(file) holds no hook activations (tensor names like blocks.0.hook_resid_post)") }
        guard let list = patchHooks else { return hooks.map { Intervention($0, .all, .patch(tensors[$0.name]!)) } }
        var out: [Intervention] = []
        for item in Self.items(list) {
            if item.contains("[") {
                let (point, selection) = try Self.target(item, flag: "--patch-hooks")
                guard let tensor = tensors[point.name] else { throw CommandFailure("--patch-hooks: \(file) has no tensor '\(point.name)'") }
                out.append(Intervention(point, selection, .patch(tensor)))
            } else {
                let filter = HookFilter(patterns: [item])
                let chosen = filter.select(hooks)
                guard !chosen.isEmpty else { throw CommandFailure("--patch-hooks: '\(item)' matches none of the hooks in \(file) (\(hooks.prefix(3).map(\.name).joined(separator: ", ")), …)") }
                out += chosen.map { Intervention($0, .all, .patch(tensors[$0.name]!)) }
            }
        }
        return out
    }

    /// `a=b` at the last '=' (hook names hold none; paths may).
    private static func split(_ spec: String) -> (String, String) {
        let eq = spec.firstIndex(of: "=")!
        return (String(spec[..<eq]).trimmingCharacters(in: .whitespaces), String(spec[spec.index(after: eq)...]).trimmingCharacters(in: .whitespaces))
    }

    /// Comma-separated items, commas inside [...] kept.
    static func items(_ list: String) -> [String] {
        var out: [String] = [], current = "", depth = 0
        for c in list {
            if c == "[" { depth += 1 } else if c == "]" { depth -= 1 }
            if c == "," && depth == 0 { out.append(current); current = "" } else { current.append(c) }
        }
        out.append(current)
        return out.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    private static func target(_ text: String, flag: String) throws -> (HookPoint, HookSelection) {
        do { return try Intervention.parseTarget(text) } catch let error as NeoXError { throw CommandFailure("\(flag): \(error.message)") }
    }

    private static func read(_ path: String, flag: String) throws -> [String: Tensor] {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: url.path) else { throw CommandFailure("\(flag): no file \(path)") }
        return try SafeTensors.read(url).mapValues { Tensor(shape: $0.shape, data: try $0.float32()) }
    }
}

/// What the interventions did to the pass: next-token losses and logit differences against the
/// clean run of the same tokens.
struct InterventionEffect {
    var cleanLoss: Double?
    var editedLoss: Double?
    var maxAbsLogitDelta: Double
    var maxAbsLogitDeltaAt: (sequence: Int, position: Int, token: Int)
    var top1Changed: Int
    var positions: Int

    /// Mean next-token cross-entropy over every position with a next token (nil when T = 1).
    init(clean: Tensor, edited: Tensor, tokens: [[Int32]]) {
        let B = tokens.count, T = tokens[0].count, V = clean.shape[2]
        var cleanSum = 0.0, editedSum = 0.0, scored = 0
        var worst = 0.0, at = (0, 0, 0), changed = 0
        clean.data.withUnsafeBufferPointer { c in
            edited.data.withUnsafeBufferPointer { e in
                for b in 0..<B {
                    for t in 0..<T {
                        let offset = (b * T + t) * V
                        let cleanRow = UnsafeBufferPointer(rebasing: c[offset..<(offset + V)])
                        let editedRow = UnsafeBufferPointer(rebasing: e[offset..<(offset + V)])
                        for v in 0..<V {
                            let delta = abs(Double(editedRow[v]) - Double(cleanRow[v]))
                            if delta > worst { worst = delta; at = (b, t, v) }
                        }
                        let cs = LogSoftmax.summarize(cleanRow), es = LogSoftmax.summarize(editedRow)
                        if cs.argmax != es.argmax { changed += 1 }
                        if t + 1 < T {
                            let target = Int(tokens[b][t + 1])
                            cleanSum -= cs.logProbability(of: cleanRow[target])
                            editedSum -= es.logProbability(of: editedRow[target])
                            scored += 1
                        }
                    }
                }
            }
        }
        cleanLoss = scored > 0 ? cleanSum / Double(scored) : nil
        editedLoss = scored > 0 ? editedSum / Double(scored) : nil
        maxAbsLogitDelta = worst
        maxAbsLogitDeltaAt = at
        top1Changed = changed
        positions = B * T
    }

    var json: JSONValue {
        ["clean_loss": cleanLoss.map { JSONValue($0) } ?? .null, "patched_loss": editedLoss.map { JSONValue($0) } ?? .null,
         "loss_delta": (cleanLoss != nil && editedLoss != nil) ? JSONValue(editedLoss! - cleanLoss!) : .null,
         "max_abs_logit_delta": JSONValue(maxAbsLogitDelta),
         "max_abs_logit_delta_at": ["sequence": JSONValue(maxAbsLogitDeltaAt.sequence), "position": JSONValue(maxAbsLogitDeltaAt.position),
                                    "token": JSONValue(maxAbsLogitDeltaAt.token)],
         "top1_changed_positions": JSONValue(top1Changed), "positions": JSONValue(positions),
         "loss": "mean next-token cross-entropy over every position with a next token"]
    }
}
