import Foundation

/// Reader for the safetensors format: an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the data.
/// Every field is checked against the file, because a lying header would otherwise turn into
/// silently wrong weights.
public enum SafeTensors {
    /// The entries of one `.safetensors` file, keyed by tensor name.
    public static func read(_ url: URL) throws -> [String: TensorEntry] {
        let file = try MappedFile(url)
        let bytes = file.allBytes
        guard file.count >= 8 else {
            throw FormatError(.truncated, "truncated safetensors file: \(file.count) bytes, too short for the 8-byte header length", file: url)
        }
        let headerLength = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard headerLength <= UInt64(file.count - 8) else {
            throw FormatError(.truncated, "safetensors header length \(headerLength) exceeds the file (\(file.count) bytes): truncated or not a safetensors file", file: url)
        }
        let headerData = Data(bytes[8..<(8 + Int(headerLength))])
        let json = try JSONParsing.object(headerData, what: "safetensors JSON header", file: url, offset: 8)
        guard let header = json as? [String: Any] else {
            throw FormatError(.malformed, "safetensors header is not a JSON object", file: url)
        }
        let dataStart = 8 + Int(headerLength)
        let dataLength = file.count - dataStart
        var entries: [String: TensorEntry] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let fields = value as? [String: Any] else {
                throw FormatError(.malformed, "safetensors entry '\(name)' is not an object", file: url)
            }
            guard let dtypeName = fields["dtype"] as? String else {
                throw FormatError(.malformed, "safetensors entry '\(name)' has no dtype", file: url)
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw FormatError(.unsupported, "tensor '\(name)' has unknown dtype '\(dtypeName)' (supported: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))", file: url)
            }
            guard let shapeValues = fields["shape"] as? [Any],
                  let shape = integers(shapeValues), shape.allSatisfy({ $0 >= 0 }) else {
                throw FormatError(.malformed, "tensor '\(name)' has a malformed shape", file: url)
            }
            guard let offsetValues = fields["data_offsets"] as? [Any], let offsets = integers(offsetValues),
                  offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw FormatError(.malformed, "tensor '\(name)' has malformed data_offsets", file: url)
            }
            let (elements, overflow) = shape.reduce((1, false)) { acc, dim in
                let (product, o) = acc.0.multipliedReportingOverflow(by: dim)
                return (product, acc.1 || o)
            }
            guard !overflow, elements.multipliedReportingOverflow(by: dtype.byteSize).overflow == false else {
                throw FormatError(.shapeMismatch, "tensor '\(name)' shape \(shape) is too large", file: url)
            }
            let expectedBytes = elements * dtype.byteSize
            guard offsets[1] - offsets[0] == expectedBytes else {
                throw FormatError(.shapeMismatch, "tensor '\(name)' data_offsets span \(offsets[1] - offsets[0]) bytes but shape \(shape) of \(dtype.rawValue) needs \(expectedBytes)", file: url)
            }
            guard offsets[1] <= dataLength else {
                throw FormatError(.truncated, "tensor '\(name)' data_offsets [\(offsets[0]), \(offsets[1])) run past the end of the data (\(dataLength) bytes): file truncated?", file: url)
            }
            entries[name] = TensorEntry(name: name, dtype: dtype, shape: shape, file: file, offset: dataStart + offsets[0])
        }
        try checkTiling(entries.values.map { ($0.name, $0.offset - dataStart, $0.byteCount) }, dataLength: dataLength, url: url)
        return entries
    }

    /// The data section must be exactly the tensors, back to back, in offset order, as the
    /// reference `safetensors` library requires: a hole, an overlap or bytes left over mean the
    /// header and the data disagree (a header length one byte short, for one, shifts every tensor
    /// by a byte and would otherwise be read as plausible-looking garbage).
    static func checkTiling(_ spans: [(name: String, begin: Int, count: Int)], dataLength: Int, url: URL) throws {
        var expected = 0
        for span in spans.sorted(by: { ($0.begin, $0.count, $0.name) < ($1.begin, $1.count, $1.name) }) {
            if span.begin < expected {
                throw FormatError(.malformed, "tensor '\(span.name)' at data offset \(span.begin) overlaps the tensor before it (which ends at \(expected))", file: url)
            }
            if span.begin > expected {
                throw FormatError(.malformed, "the data section has a hole: bytes [\(expected), \(span.begin)) before tensor '\(span.name)' belong to no tensor", file: url)
            }
            expected = span.begin + span.count
        }
        guard expected == dataLength else {
            throw FormatError(.malformed, "the tensors cover \(expected) bytes of the \(dataLength)-byte data section: the header length or the data offsets are wrong", file: url)
        }
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var result: [Int] = []
        for value in values {
            guard !isJSONBoolean(value), let number = value as? NSNumber,
                  number.doubleValue == number.doubleValue.rounded(), abs(number.doubleValue) < 9.0e15 else { return nil }
            result.append(number.intValue)
        }
        return result
    }
}
