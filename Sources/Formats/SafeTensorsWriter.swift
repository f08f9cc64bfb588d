import Foundation

/// Writes named fp32 tensors as one `.safetensors` file: 8-byte little-endian header length,
/// a JSON header `{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}}` with names
/// sorted and space-padded so the data starts 8-byte aligned, then the tensors' bytes in name order.
/// The file appears atomically (`AtomicFile`): a crash never leaves a half-written capture.
public enum SafeTensorsWriter {
    public static func write(_ tensors: [String: Tensor], to url: URL, metadata: [String: String] = [:]) throws {
        let names = tensors.keys.sorted()
        var header = "{"
        var entries: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            entries.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        var offset = 0
        for name in names {
            let tensor = tensors[name]!
            guard tensor.shape.reduce(1, *) == tensor.data.count else {
                throw FormatError(.shapeMismatch, "tensor '\(name)' has shape \(tensor.shape) but \(tensor.data.count) elements", file: url)
            }
            let bytes = tensor.data.count * 4
            entries.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += entries.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }

        try AtomicFile.write(to: url) { sink in
            var length = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: &length) { try sink.write($0) }
            try headerBytes.withUnsafeBytes { try sink.write($0) }
            // Straight from each tensor's storage: a multi-GB tensor never needs a second copy.
            for name in names { try tensors[name]!.data.withUnsafeBytes { try sink.write($0) } }
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}
