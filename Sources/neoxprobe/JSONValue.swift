import Foundation

/// A JSON value that keeps booleans, integers and floats apart (Foundation's JSONSerialization
/// on Linux turns `true` into `1`), so a copied config.json stays faithful in the results.
enum JSONValue: Codable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .int(value) }
    init(floatLiteral value: Double) { self = .double(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
    /// Non-finite numbers (an empty evaluation, an overflowing perplexity) are kept here and
    /// written as null; `nonFinitePaths` lists them, so an output can flag them by name.
    init(_ value: Double) { self = .double(value) }

    /// The key paths (`a.b[2]`) of every NaN or ±inf number inside, sorted.
    func nonFinitePaths(_ prefix: String = "") -> [String] {
        switch self {
        case .double(let v) where !v.isFinite: return [prefix.isEmpty ? "(value)" : prefix]
        case .array(let items): return items.enumerated().flatMap { $1.nonFinitePaths("\(prefix)[\($0)]") }
        case .object(let fields):
            return fields.keys.sorted().flatMap { key in fields[key]!.nonFinitePaths(prefix.isEmpty ? key : "\(prefix).\(key)") }
        default: return []
        }
    }
    init(_ value: Int) { self = .int(value) }
    init(_ value: String) { self = .string(value) }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int.self) { self = .int(value) }
        else if let value = try? container.decode(Double.self) { self = .double(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let v): try container.encode(v)
        case .int(let v): try container.encode(v)
        case .double(let v): if v.isFinite { try container.encode(v) } else { try container.encodeNil() }
        case .string(let v): try container.encode(v)
        case .array(let v): try container.encode(v)
        case .object(let v): try container.encode(v)
        }
    }
}
