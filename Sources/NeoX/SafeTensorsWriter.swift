import Foundation

/// Writes named fp32 tensors as one `.safetensors` file: 8-byte little-endian header length,
/// a JSON header `{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}}` with names
/// sorted and space-padded so the data starts 8-byte aligned, then the tensors' bytes in name order.
/// The file appears atomically: it is written to a temporary sibling and renamed into place.
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
                throw NeoXError("tensor '\(name)' has shape \(tensor.shape) but \(tensor.data.count) elements", file: url)
            }
            let bytes = tensor.data.count * 4
            entries.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += entries.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }

        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).\(UInt32.random(in: 0...UInt32.max)).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw NeoXError("cannot create output file (does the directory exist and is it writable?)", file: temporary)
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            var length = UInt64(headerBytes.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: Data(headerBytes))
            for name in names {
                // Written in chunks so a multi-GB tensor never needs a second in-memory copy.
                try tensors[name]!.data.withUnsafeBytes { raw in
                    var start = 0
                    let chunk = 1 << 24
                    while start < raw.count {
                        let end = min(raw.count, start + chunk)
                        try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: raw.baseAddress! + start),
                                                          count: end - start, deallocator: .none))
                        start = end
                    }
                }
            }
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            if let error = error as? NeoXError { throw error }
            throw NeoXError("cannot write: \(error.localizedDescription)", file: url)
        }
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw NeoXError("cannot move finished file into place: \(reason)", file: url)
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
