import Foundation

/// A Python global (`module.name`) as it appears in a `GLOBAL` / `STACK_GLOBAL` opcode.
struct PickleGlobal: Hashable, Sendable, CustomStringConvertible {
    var module: String
    var name: String

    init(_ module: String, _ name: String) {
        self.module = module
        self.name = name
    }

    var description: String { "\(module).\(name)" }
}

/// A Python list seen by the unpickler. Pickle containers have identity: `APPEND` mutates the list
/// that the memo also refers to, so lists (and dicts) are boxed rather than copied.
final class PickleList: @unchecked Sendable {
    var items: [PickleValue] = []
    /// Nesting depth (1 + the deepest item), kept by the unpickler to bound how deep a pickle nests.
    var depth = 1
    /// Set once the list is inside another container: from then on it may not change, so the
    /// depth recorded for that container stays true.
    var isNested = false
    init(_ items: [PickleValue] = []) { self.items = items }
}

/// A Python dict seen by the unpickler, keeping insertion order (state dicts are ordered).
final class PickleDict: @unchecked Sendable {
    private(set) var pairs: [(key: PickleValue, value: PickleValue)] = []
    /// Positions of string keys, so a state dict with thousands of entries builds in linear time.
    private var stringKeys: [String: Int] = [:]
    /// As `PickleList.depth` / `isNested`.
    var depth = 1
    var isNested = false
    init() {}

    /// Python semantics: assigning an existing key replaces its value in place.
    func set(_ key: PickleValue, _ value: PickleValue) {
        let existing: Int?
        if case .string(let text) = key { existing = stringKeys[text] } else { existing = pairs.firstIndex { $0.key == key } }
        if let existing {
            pairs[existing].value = value
        } else {
            if case .string(let text) = key { stringKeys[text] = pairs.count }
            pairs.append((key, value))
        }
    }
}

/// The values the restricted unpickler can produce. Anything a resolver builds from a whitelisted
/// global (a storage, a tensor) travels as `.opaque`.
indirect enum PickleValue: @unchecked Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case global(PickleGlobal)
    case opaque(any Sendable)

    /// Structural equality for scalars, strings and tuples; identity for containers; never for opaque
    /// values. Only used for dict keys, which in state dicts are always strings.
    static func == (lhs: PickleValue, rhs: PickleValue) -> Bool {
        switch (lhs, rhs) {
        case (.none, .none): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.float(a), .float(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.bytes(a), .bytes(b)): return a == b
        case let (.tuple(a), .tuple(b)): return a == b
        case let (.list(a), .list(b)): return a === b
        case let (.dict(a), .dict(b)): return a === b
        case let (.global(a), .global(b)): return a == b
        default: return false
        }
    }

    /// A short human-readable rendering for error messages.
    var summary: String {
        switch self {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .float(let d): return String(d)
        case .string(let s): return "'\(s)'"
        case .bytes(let b): return "bytes(\(b.count))"
        case .tuple(let items): return "(" + items.map(\.summary).joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
        case .list(let list): return "list(\(list.items.count))"
        case .dict(let dict): return "dict(\(dict.pairs.count))"
        case .global(let g): return g.description
        case .opaque(let value): return "<\(type(of: value))>"
        }
    }
}

/// What a pickle may do beyond building plain data: every global it names, every call it makes and
/// every persistent id it loads goes through the resolver, so a checkpoint can never run code.
protocol PickleResolver {
    /// Whether `GLOBAL module name` may be loaded at all.
    func allows(_ global: PickleGlobal) -> Bool
    /// `REDUCE` / `NEWOBJ`: call an allowed global with positional arguments.
    func call(_ global: PickleGlobal, arguments: [PickleValue]) throws -> PickleValue
    /// `BINPERSID`: turn a persistent id into an object (for torch, a storage).
    func persistentLoad(_ id: PickleValue) throws -> PickleValue
    /// `BUILD`: apply `state` to `object`; resolvers may ignore state they do not need.
    func build(_ object: PickleValue, state: PickleValue) throws -> PickleValue
}

/// A failure while running a pickle; `TorchCheckpoint` turns it into a `FormatError` naming the file.
struct PickleError: Error, CustomStringConvertible, Sendable {
    var message: String
    /// Byte offset of the opcode that failed.
    var position: Int
    /// How `TorchCheckpoint` reports it: most failures mean a malformed file, a few an unsupported one.
    var kind: FormatError.Kind = .malformed
    var description: String { "\(message) (at pickle byte \(position))" }
}

/// The subset of the pickle virtual machine (protocols 2–5) that `torch.save` state dicts use.
/// Plain data is built directly; globals, calls and persistent ids are delegated to a resolver.
/// Text-mode (protocol 0/1) string and integer opcodes are rejected: torch never writes them.
struct Unpickler {
    /// How deep containers may nest. A state dict nests a handful of levels; a hostile pickle of
    /// 10⁶ nested tuples or lists would otherwise overflow the stack when it is printed or freed
    /// (both recursive), so deeper nesting is refused as it is built.
    static let maxDepth = 64

    /// A stack entry: the value and how deep it nests (scalars 0, a container 1 + its deepest item).
    private struct Slot {
        var value: PickleValue
        var depth: Int
    }

    private let bytes: [UInt8]
    private var position = 0
    private var stack: [Slot] = []
    private var markStack: [Int] = []
    private var memo: [Int: Slot] = [:]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Runs the pickle to its `STOP` and returns the object it built.
    static func load(_ bytes: [UInt8], resolver: some PickleResolver) throws -> PickleValue {
        var machine = Unpickler(bytes)
        return try machine.run(resolver: resolver)
    }

    private var opcodeStart = 0

    private func fail(_ message: String) -> PickleError {
        PickleError(message: message, position: opcodeStart)
    }

    private mutating func read(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - position else {
            throw fail("pickle ends in the middle of an opcode argument (needs \(count) bytes, \(bytes.count - position) left): truncated or corrupt")
        }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    private mutating func readByte() throws -> UInt8 { try read(1).first! }

    /// Little-endian unsigned integer of `count` bytes.
    private mutating func readUnsigned(_ count: Int) throws -> UInt64 {
        var value: UInt64 = 0
        for (shift, byte) in try read(count).enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return value
    }

    private mutating func readLength(_ width: Int) throws -> Int {
        let length = try readUnsigned(width)
        guard length <= UInt64(bytes.count - position) else {
            throw fail("length \(length) runs past the end of the pickle: truncated or corrupt")
        }
        return Int(length)
    }

    private mutating func readLine() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else {
            throw fail("unterminated text argument")
        }
        defer { position = end + 1 }
        guard let text = String(bytes: bytes[position..<end], encoding: .utf8) else { throw fail("text argument is not UTF-8") }
        return text
    }

    private mutating func utf8(_ count: Int) throws -> String {
        guard let text = String(bytes: try read(count), encoding: .utf8) else { throw fail("string is not valid UTF-8") }
        return text
    }

    private mutating func push(_ value: PickleValue, depth: Int = 0) {
        stack.append(Slot(value: value, depth: depth))
    }

    private mutating func popSlot() throws -> Slot {
        guard let top = stack.popLast() else { throw fail("stack underflow") }
        if let mark = markStack.last, stack.count < mark { throw fail("stack underflow past a MARK") }
        return top
    }

    private mutating func pop() throws -> PickleValue { try popSlot().value }

    /// Everything above the most recent MARK, which is removed.
    private mutating func popMark() throws -> [Slot] {
        guard let mark = markStack.popLast() else { throw fail("no MARK on the stack") }
        guard mark <= stack.count else { throw fail("MARK lies above the stack") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private func top() throws -> PickleValue {
        guard let slot = stack.last else { throw fail("stack underflow") }
        return slot.value
    }

    /// The depth of a container built from `items` (which become nested and may no longer
    /// change), refused past `maxDepth`.
    private func nest(_ items: [Slot]) throws -> Int {
        var deepest = 0
        for item in items {
            switch item.value {
            case .list(let list): deepest = max(deepest, list.depth); list.isNested = true
            case .dict(let dict): deepest = max(deepest, dict.depth); dict.isNested = true
            default: deepest = max(deepest, item.depth)
            }
        }
        guard deepest < Self.maxDepth else { throw fail("containers nest deeper than \(Self.maxDepth) levels") }
        return deepest + 1
    }

    private mutating func pushTuple(_ items: [Slot]) throws {
        push(.tuple(items.map(\.value)), depth: try nest(items))
    }

    /// Two's-complement little-endian integer (LONG1 / LONG4); torch only needs values that fit Int.
    private func long(_ digits: ArraySlice<UInt8>) throws -> Int {
        guard !digits.isEmpty else { return 0 }
        guard digits.count <= 8 else { throw fail("integer of \(digits.count) bytes does not fit 64 bits") }
        var value: UInt64 = 0
        for (shift, byte) in digits.enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        if digits.count < 8, digits.last! & 0x80 != 0 { value |= ~UInt64(0) << (8 * UInt64(digits.count)) }
        return Int(bitPattern: UInt(value))
    }

    private mutating func put(_ index: Int) throws {
        guard let slot = stack.last else { throw fail("stack underflow") }
        memo[index] = slot
    }

    private mutating func get(_ index: Int) throws {
        guard let slot = memo[index] else { throw fail("memo key \(index) was never stored") }
        stack.append(slot)
    }

    private func global(_ value: PickleValue) throws -> PickleGlobal {
        guard case .global(let g) = value else { throw fail("cannot call \(value.summary): not a global") }
        return g
    }

    mutating func run(resolver: some PickleResolver) throws -> PickleValue {
        while true {
            opcodeStart = position
            guard position < bytes.count else { throw fail("pickle ends without a STOP opcode: truncated") }
            let opcode = try readByte()
            switch opcode {
            case 0x80: // PROTO
                let version = try readByte()
                guard version >= 2 && version <= 5 else { throw fail("unsupported pickle protocol \(version)") }
            case 0x95: // FRAME: a length hint only
                _ = try readUnsigned(8)
            case 0x2E: // STOP
                return try pop()
            case 0x28: // MARK
                markStack.append(stack.count)
            case 0x30: // POP
                _ = try pop()
            case 0x31: // POP_MARK
                _ = try popMark()
            case 0x32: // DUP
                guard let slot = stack.last else { throw fail("stack underflow") }
                stack.append(slot)

            case 0x4E: push(.none) // NONE
            case 0x88: push(.bool(true)) // NEWTRUE
            case 0x89: push(.bool(false)) // NEWFALSE
            case 0x4A: // BININT
                push(.int(Int(Int32(bitPattern: UInt32(try readUnsigned(4))))))
            case 0x4B: push(.int(Int(try readUnsigned(1)))) // BININT1
            case 0x4D: push(.int(Int(try readUnsigned(2)))) // BININT2
            case 0x8A: // LONG1
                let count = try readLength(1)
                push(.int(try long(try read(count))))
            case 0x8B: // LONG4
                let count = try readLength(4)
                push(.int(try long(try read(count))))
            case 0x47: // BINFLOAT: big-endian IEEE double
                var raw: UInt64 = 0
                for byte in try read(8) { raw = raw << 8 | UInt64(byte) }
                push(.float(Double(bitPattern: raw)))

            case 0x58: push(.string(try utf8(try readLength(4)))) // BINUNICODE
            case 0x8C: push(.string(try utf8(try readLength(1)))) // SHORT_BINUNICODE
            case 0x8D: push(.string(try utf8(try readLength(8)))) // BINUNICODE8
            case 0x42: push(.bytes(Array(try read(try readLength(4))))) // BINBYTES
            case 0x43: push(.bytes(Array(try read(try readLength(1))))) // SHORT_BINBYTES
            case 0x8E: push(.bytes(Array(try read(try readLength(8))))) // BINBYTES8

            case 0x29: push(.tuple([]), depth: 1) // EMPTY_TUPLE
            case 0x74: try pushTuple(try popMark()) // TUPLE
            case 0x85: // TUPLE1
                let a = try popSlot()
                try pushTuple([a])
            case 0x86: // TUPLE2
                let b = try popSlot(), a = try popSlot()
                try pushTuple([a, b])
            case 0x87: // TUPLE3
                let c = try popSlot(), b = try popSlot(), a = try popSlot()
                try pushTuple([a, b, c])
            case 0x5D: push(.list(PickleList())) // EMPTY_LIST
            case 0x6C: // LIST
                let items = try popMark()
                let list = PickleList(items.map(\.value))
                list.depth = try nest(items)
                push(.list(list))
            case 0x7D: push(.dict(PickleDict())) // EMPTY_DICT
            case 0x64: // DICT
                let items = try popMark()
                let dict = try makeDict(items.map(\.value))
                dict.depth = try nest(items)
                push(.dict(dict))
            case 0x61: // APPEND
                let item = try popSlot()
                try append([item], to: try top())
            case 0x65: // APPENDS
                let items = try popMark()
                try append(items, to: try top())
            case 0x73: // SETITEM
                let value = try popSlot(), key = try popSlot()
                try setItems([key, value], in: try top())
            case 0x75: // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
                try setItems(items, in: try top())

            case 0x71: try put(Int(try readUnsigned(1))) // BINPUT
            case 0x72: try put(Int(try readUnsigned(4))) // LONG_BINPUT
            case 0x94: try put(memo.count) // MEMOIZE
            case 0x68: try get(Int(try readUnsigned(1))) // BINGET
            case 0x6A: try get(Int(try readUnsigned(4))) // LONG_BINGET

            case 0x63: // GLOBAL
                let module = try readLine(), name = try readLine()
                push(try allowed(PickleGlobal(module, name), resolver))
            case 0x93: // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard case .string(let n) = name, case .string(let m) = module else {
                    throw fail("STACK_GLOBAL needs two strings")
                }
                push(try allowed(PickleGlobal(m, n), resolver))
            case 0x52: // REDUCE
                let arguments = try pop(), callable = try pop()
                guard case .tuple(let args) = arguments else { throw fail("REDUCE arguments are not a tuple") }
                let g = try global(callable)
                push(try located { try resolver.call(g, arguments: args) })
            case 0x81: // NEWOBJ: cls.__new__(cls, *args)
                let arguments = try pop(), cls = try pop()
                guard case .tuple(let args) = arguments else { throw fail("NEWOBJ arguments are not a tuple") }
                let g = try global(cls)
                push(try located { try resolver.call(g, arguments: args) })
            case 0x62: // BUILD
                let state = try pop(), object = try pop()
                push(try located { try resolver.build(object, state: state) })
            case 0x51: // BINPERSID
                let id = try pop()
                push(try located { try resolver.persistentLoad(id) })

            default:
                throw fail(String(format: "unsupported pickle opcode 0x%02x", opcode))
            }
        }
    }

    /// Resolver errors do not know where they happened; stamp them with the current opcode.
    private func located(_ body: () throws -> PickleValue) throws -> PickleValue {
        do { return try body() } catch var error as PickleError {
            error.position = opcodeStart
            throw error
        }
    }

    private func allowed(_ global: PickleGlobal, _ resolver: some PickleResolver) throws -> PickleValue {
        guard resolver.allows(global) else {
            throw fail("forbidden global '\(global)': only tensor-rebuilding globals are allowed in a checkpoint")
        }
        return .global(global)
    }

    /// `APPEND`/`APPENDS`: a list still being built (not yet inside another container) grows.
    private func append(_ items: [Slot], to target: PickleValue) throws {
        guard case .list(let list) = target else { throw fail("APPEND to a non-list") }
        guard !list.isNested else { throw fail("APPEND to a list already inside another container (not something torch.save writes)") }
        list.depth = max(list.depth, try nest(items))
        list.items.append(contentsOf: items.map(\.value))
    }

    /// `SETITEM`/`SETITEMS`: as `append`, for dicts; `items` are key, value pairs.
    private func setItems(_ items: [Slot], in target: PickleValue) throws {
        guard case .dict(let dict) = target else { throw fail("SETITEM on a non-dict") }
        guard !dict.isNested else { throw fail("SETITEM on a dict already inside another container (not something torch.save writes)") }
        dict.depth = max(dict.depth, try nest(items))
        for i in stride(from: 0, to: items.count, by: 2) { dict.set(items[i].value, items[i + 1].value) }
    }

    private func makeDict(_ items: [PickleValue]) throws -> PickleDict {
        guard items.count % 2 == 0 else { throw fail("DICT with an odd number of items") }
        let dict = PickleDict()
        for i in stride(from: 0, to: items.count, by: 2) { dict.set(items[i], items[i + 1]) }
        return dict
    }
}
