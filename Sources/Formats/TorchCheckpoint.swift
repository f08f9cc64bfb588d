import Foundation
import ZIPFoundation

/// Reader for PyTorch `torch.save` state dicts (`pytorch_model.bin`, torch ≥ 1.6): a zip archive
/// holding `<archive>/data.pkl` (the pickled dict of tensors), one `<archive>/data/<key>` file per
/// storage, `<archive>/byteorder` and `<archive>/version`.
///
/// Tensors are not copied: torch writes the storage files STORED (uncompressed, 64-byte aligned),
/// so each `TensorEntry` points straight into the memory-mapped archive. The pickle is run by a
/// restricted unpickler that only knows the globals a state dict needs, so loading a checkpoint can
/// never execute code.
enum TorchCheckpoint {
    /// The tensors of one `torch.save` file, keyed by state-dict name (buffers included; the
    /// `Checkpoint` layer drops the ones models recompute).
    static func read(_ url: URL) throws -> [String: TensorEntry] {
        let file = try MappedFile(url)
        let bytes = file.allBytes
        if file.count >= 2, bytes[0] == 0x80, bytes[1] <= 5 { // a bare pickle (PROTO opcode), not a zip
            throw FormatError(.unsupported, "legacy (pre-1.6, non-zip) torch.save format not supported; re-save with torch>=1.6 (torch.save(torch.load(f), f))", file: url)
        }
        let directory = try ZipDirectory(file)

        // The archive's top folder is whatever name the file was saved under; find it via data.pkl.
        let pickles = directory.entries.keys.filter { name in
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[1] == "data.pkl"
        }
        guard let pickleName = pickles.sorted().first else {
            throw FormatError(.malformed, "not a torch.save checkpoint: the zip has no <archive>/data.pkl (entries: \(directory.entries.keys.sorted().prefix(5).joined(separator: ", ")))", file: url)
        }
        guard pickles.count == 1 else {
            throw FormatError(.malformed, "ambiguous torch.save checkpoint: several data.pkl entries (\(pickles.sorted().joined(separator: ", ")))", file: url)
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))

        if let order = directory.entries[prefix + "byteorder"] {
            let text = String(decoding: try directory.contents(of: order), as: UTF8.self)
            guard text == "little" else {
                throw FormatError(.unsupported, "checkpoint byteorder is '\(text)'; only little-endian checkpoints are supported", file: url)
            }
        }

        let pickle = try directory.contents(of: directory.entries[pickleName]!)
        let resolver = TorchResolver(file: file, directory: directory, prefix: prefix)
        let root: PickleValue
        do {
            root = try Unpickler.load(pickle, resolver: resolver)
        } catch let error as PickleError {
            throw FormatError(error.kind, "\(pickleName): \(error)", file: url)
        }

        guard case .dict(let dict) = root else {
            throw FormatError(.malformed, "\(pickleName) holds \(root.summary), expected a state dict of tensors", file: url)
        }
        var entries: [String: TensorEntry] = [:]
        var storages: [String: TorchStorage] = [:]
        for (key, value) in dict.pairs {
            guard case .string(let name) = key else {
                throw FormatError(.malformed, "state dict key \(key.summary) is not a string", file: url)
            }
            guard case .opaque(let object) = value, let tensor = object as? TorchTensor else {
                throw FormatError(.malformed, "state dict entry '\(name)' is \(value.summary), not a tensor", file: url)
            }
            entries[name] = try tensor.entry(named: name, file: file, url: url)
            storages[tensor.storage.key] = tensor.storage
        }
        try checkCRC(of: storages.values, in: directory, prefix: prefix, url: url)
        return entries
    }

    /// Every storage the state dict uses must match its zip entry's CRC-32: a flipped bit in the
    /// weights is then a clear error instead of a silently different model. One pass over bytes
    /// that are memory-mapped anyway, cheap next to widening them.
    static func checkCRC(of storages: some Sequence<TorchStorage>, in directory: ZipDirectory, prefix: String, url: URL) throws {
        for storage in storages.sorted(by: { $0.key < $1.key }) {
            let name = prefix + "data/" + storage.key
            guard let entry = directory.entries[name] else { continue }   // persistentLoad checked presence
            let crc = directory.file.withUnsafeBytes(offset: storage.offset, length: storage.byteCount) { bytes -> UInt32 in
                guard let base = bytes.baseAddress, bytes.count > 0 else { return Data().crc32(checksum: 0) }
                return Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: bytes.count, deallocator: .none).crc32(checksum: 0)
            }
            guard crc == entry.crc32 else {
                throw FormatError(.corrupt, "corrupt zip archive: storage entry '\(name)' fails its CRC-32 check (the weights' bytes were changed)", file: url)
            }
        }
    }
}

/// A storage named by a persistent id: its element type and the file inside the archive holding it.
struct TorchStorage: Sendable {
    var key: String
    var dtype: DType
    /// Elements the pickle says the storage has.
    var count: Int
    /// Where the storage's bytes begin in the mapped archive, and how many there are.
    var offset: Int
    var byteCount: Int
}

/// The arguments `_rebuild_tensor_v2` received; checked and turned into a `TensorEntry` once its
/// state-dict name is known, so errors can name the tensor.
struct TorchTensor: Sendable {
    var storage: TorchStorage
    var storageOffset: Int
    var shape: [Int]
    var stride: [Int]

    func entry(named name: String, file: MappedFile, url: URL) throws -> TensorEntry {
        func fail(_ message: String, _ kind: FormatError.Kind = .malformed) -> FormatError { FormatError(kind, "tensor '\(name)': \(message)", file: url) }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("negative size in shape \(shape)") }
        guard stride.count == shape.count else { throw fail("stride \(stride) does not match shape \(shape)") }
        guard storageOffset >= 0 else { throw fail("negative storage offset \(storageOffset)") }
        var elements = 1
        for dim in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw fail("shape \(shape) is too large") }
            elements = product
        }
        // Row-major contiguity as torch defines it: size-1 dimensions may carry any stride.
        if elements > 0 {
            var expected = 1
            for (size, step) in zip(shape, stride).reversed() where size != 1 {
                guard step == expected else {
                    throw fail("not contiguous (shape \(shape), stride \(stride)); save it with .contiguous()")
                }
                expected *= size
            }
        }
        guard storageOffset <= storage.count, elements <= storage.count - storageOffset else {
            throw fail("elements [\(storageOffset), \(storageOffset) + \(elements)) run past its storage '\(storage.key)' of \(storage.count) elements")
        }
        return TensorEntry(name: name, dtype: storage.dtype, shape: shape, file: file,
                           offset: storage.offset + storageOffset * storage.dtype.byteSize)
    }
}

/// The whitelist: which globals a state-dict pickle may name, and what calling them means.
struct TorchResolver: PickleResolver {
    let file: MappedFile
    let directory: ZipDirectory
    let prefix: String

    static let storageTypes: [String: DType] = [
        "HalfStorage": .f16, "BFloat16Storage": .bf16, "FloatStorage": .f32, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]
    static let dtypes: [String: DType] = [
        "float16": .f16, "half": .f16, "bfloat16": .bf16, "float32": .f32, "float": .f32,
        "float64": .f64, "double": .f64, "int64": .i64, "long": .i64, "int32": .i32, "int": .i32,
        "int16": .i16, "short": .i16, "int8": .i8, "uint8": .u8, "bool": .bool,
    ]
    static let rebuildTensor = PickleGlobal("torch._utils", "_rebuild_tensor_v2")
    static let rebuildParameter = PickleGlobal("torch._utils", "_rebuild_parameter")
    static let rebuildParameterWithState = PickleGlobal("torch._utils", "_rebuild_parameter_with_state")
    static let orderedDict = PickleGlobal("collections", "OrderedDict")

    func allows(_ global: PickleGlobal) -> Bool {
        if global.module == "torch" {
            return Self.storageTypes[global.name] != nil || Self.dtypes[global.name] != nil
        }
        return [Self.rebuildTensor, Self.rebuildParameter, Self.rebuildParameterWithState, Self.orderedDict].contains(global)
    }

    func call(_ global: PickleGlobal, arguments: [PickleValue]) throws -> PickleValue {
        func fail(_ message: String) -> PickleError { PickleError(message: "\(global)\(message)", position: 0) }
        switch global {
        case Self.orderedDict:
            guard arguments.isEmpty else { throw fail(" called with arguments; expected OrderedDict()") }
            return .dict(PickleDict())
        case Self.rebuildTensor:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard arguments.count >= 4, case .opaque(let object) = arguments[0], let storage = object as? TorchStorage,
                  case .int(let offset) = arguments[1],
                  case .tuple(let sizes) = arguments[2], let shape = Self.integers(sizes),
                  case .tuple(let strides) = arguments[3], let stride = Self.integers(strides) else {
                throw fail(" called with unexpected arguments \(PickleValue.tuple(arguments).summary)")
            }
            return .opaque(TorchTensor(storage: storage, storageOffset: offset, shape: shape, stride: stride))
        case Self.rebuildParameter, Self.rebuildParameterWithState:
            // (data, requires_grad, backward_hooks[, state]): a Parameter is its data for inference.
            guard let data = arguments.first, case .opaque(let object) = data, object is TorchTensor else {
                throw fail(" called without a tensor")
            }
            return data
        default:
            throw fail(" cannot be called")
        }
    }

    func persistentLoad(_ id: PickleValue) throws -> PickleValue {
        func fail(_ message: String, _ kind: FormatError.Kind = .malformed) -> PickleError {
            PickleError(message: message, position: 0, kind: kind)
        }
        // ('storage', storage_type, key, location, numel)
        guard case .tuple(let fields) = id, fields.count == 5, fields[0] == .string("storage"),
              case .global(let type) = fields[1], case .string(let key) = fields[2], case .int(let count) = fields[4] else {
            throw fail("unexpected persistent id \(id.summary)")
        }
        guard let dtype = Self.storageTypes[type.name] ?? Self.dtypes[type.name], type.module == "torch" else {
            throw fail("unsupported storage type \(type)", .unsupported)
        }
        guard count >= 0 else { throw fail("storage '\(key)' has negative size \(count)") }
        let name = prefix + "data/" + key
        guard let entry = directory.entries[name] else {
            throw fail("storage '\(key)' is missing from the archive (no entry \(name))")
        }
        guard !entry.isCompressed else {
            throw fail("storage entry \(name) is compressed (method \(entry.method)); torch writes storages uncompressed — re-save with torch.save", .unsupported)
        }
        let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, entry.size >= needed else {
            throw fail("storage entry \(name) has \(entry.size) bytes, fewer than the \(count) × \(dtype.byteSize) bytes the pickle declares")
        }
        return .opaque(TorchStorage(key: key, dtype: dtype, count: count, offset: entry.dataOffset, byteCount: entry.size))
    }

    func build(_ object: PickleValue, state: PickleValue) throws -> PickleValue {
        // OrderedDict state (`_metadata` of `Module.state_dict()`) and Parameter state are not needed.
        object
    }

    static func integers(_ values: [PickleValue]) -> [Int]? {
        var result: [Int] = []
        for value in values {
            guard case .int(let i) = value else { return nil }
            result.append(i)
        }
        return result
    }
}

/// The central directory of a zip archive that is already memory-mapped, with each entry's data
/// offset resolved through its local header. ZIPFoundation does not expose data offsets, so the
/// directory is parsed here (ZIP64 included: torch writes ZIP64 records for files over 4 GiB);
/// ZIPFoundation is used to inflate the rare compressed small entry.
struct ZipDirectory {
    struct Entry {
        var name: String
        /// 0 = stored, 8 = deflate.
        var method: Int
        var crc32: UInt32
        var compressedSize: Int
        /// Uncompressed size.
        var size: Int
        var dataOffset: Int
        var isCompressed: Bool { method != 0 }
    }

    let file: MappedFile
    private(set) var entries: [String: Entry] = [:]

    init(_ file: MappedFile) throws {
        self.file = file
        let bytes = file.allBytes
        let url = file.url
        func fail(_ message: String, _ kind: FormatError.Kind = .malformed) -> FormatError { FormatError(kind, message, file: url) }
        func u16(_ at: Int) -> Int { Int(UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8) }
        func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }

        // End of central directory: 22 bytes plus a comment of up to 65535 bytes at the very end.
        let eocdSignature = 0x0605_4B50
        var eocd = -1
        var at = file.count - 22
        while at >= max(0, file.count - 22 - 65535) {
            if u32(at) == eocdSignature { eocd = at; break }
            at -= 1
        }
        guard eocd >= 0 else {
            let head = file.count >= 4 && u32(0) == 0x0403_4B50
            throw fail(head ? "truncated zip archive: no end-of-central-directory record (file cut short?)"
                            : "not a zip archive (torch.save checkpoint expected): no end-of-central-directory record",
                       head ? .truncated : .malformed)
        }
        var entryCount = u16(eocd + 10)
        var directorySize = UInt64(u32(eocd + 12))
        var directoryOffset = UInt64(u32(eocd + 16))
        if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // ZIP64: a locator right before the EOCD points at the ZIP64 end record.
            guard eocd >= 20, u32(eocd - 20) == 0x0706_4B50 else { throw fail("corrupt zip archive: ZIP64 locator missing") }
            let record = u64(eocd - 20 + 8)
            guard file.count >= 56, record <= UInt64(file.count - 56), u32(Int(record)) == 0x0606_4B50 else {
                throw fail("corrupt zip archive: ZIP64 end record missing or truncated", .truncated)
            }
            let total = u64(Int(record) + 32)
            guard total <= UInt64(Int.max / 46) else { throw fail("corrupt zip archive: absurd entry count \(total)", .corrupt) }
            entryCount = Int(total)
            directorySize = u64(Int(record) + 40)
            directoryOffset = u64(Int(record) + 48)
        }
        guard directoryOffset <= UInt64(file.count), directorySize <= UInt64(file.count) - directoryOffset else {
            throw fail("truncated or corrupt zip archive: central directory [\(directoryOffset), +\(directorySize)) lies outside the file (\(file.count) bytes)", .truncated)
        }

        var cursor = Int(directoryOffset)
        let end = Int(directoryOffset + directorySize)
        for index in 0..<entryCount {
            guard cursor + 46 <= end, u32(cursor) == 0x0201_4B50 else {
                throw fail("corrupt zip archive: central directory record \(index) is damaged")
            }
            let method = u16(cursor + 10)
            let crc = UInt32(u32(cursor + 16))
            var compressed = UInt64(u32(cursor + 20))
            var uncompressed = UInt64(u32(cursor + 24))
            let nameLength = u16(cursor + 28), extraLength = u16(cursor + 30), commentLength = u16(cursor + 32)
            var localHeader = UInt64(u32(cursor + 42))
            guard cursor + 46 + nameLength + extraLength + commentLength <= end else {
                throw fail("corrupt zip archive: central directory record \(index) overruns the directory")
            }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(cursor + 46)..<(cursor + 46 + nameLength)]), as: UTF8.self)
            // ZIP64 extra field (id 1): the 64-bit values of whichever fields were saturated, in order.
            var extra = cursor + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = u16(extra), length = u16(extra + 2)
                var field = extra + 4
                if id == 1 {
                    func next() throws -> UInt64 {
                        guard field + 8 <= extra + 4 + length, field + 8 <= extraEnd else {
                            throw fail("corrupt zip archive: ZIP64 extra field of '\(name)' is too short")
                        }
                        defer { field += 8 }
                        return u64(field)
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next() }
                    if compressed == 0xFFFF_FFFF { compressed = try next() }
                    if localHeader == 0xFFFF_FFFF { localHeader = try next() }
                }
                extra += 4 + length
            }
            cursor += 46 + nameLength + extraLength + commentLength

            guard file.count >= 30, localHeader <= UInt64(file.count - 30), u32(Int(localHeader)) == 0x0403_4B50 else {
                throw fail("truncated or corrupt zip archive: local header of '\(name)' is missing", .truncated)
            }
            let local = Int(localHeader)
            let dataOffset = UInt64(local + 30 + u16(local + 26) + u16(local + 28))
            guard compressed <= UInt64(file.count), dataOffset <= UInt64(file.count) - compressed else {
                throw fail("truncated zip archive: data of '\(name)' (\(compressed) bytes at \(dataOffset)) runs past the end of the file (\(file.count) bytes)", .truncated)
            }
            guard uncompressed <= UInt64(Int.max) else { throw fail("corrupt zip archive: absurd size of '\(name)'", .corrupt) }
            guard method != 0 || compressed == uncompressed else {
                throw fail("corrupt zip archive: stored entry '\(name)' has different compressed and uncompressed sizes", .corrupt)
            }
            entries[name] = Entry(name: name, method: method, crc32: crc, compressedSize: Int(compressed),
                                  size: Int(uncompressed), dataOffset: Int(dataOffset))
        }
    }

    /// The bytes of a small entry (data.pkl, byteorder), checked against its CRC-32 so a corrupt
    /// pickle is reported as such rather than as a confusing unpickling failure.
    func contents(of entry: Entry) throws -> [UInt8] {
        let data: Data
        if entry.isCompressed {
            do {
                let archive = try Archive(url: file.url, accessMode: .read)
                guard let zipEntry = archive[entry.name] else { throw FormatError(.io, "entry vanished", file: file.url) }
                var inflated = Data()
                _ = try archive.extract(zipEntry, skipCRC32: false) { inflated.append($0) }
                data = inflated
            } catch {
                throw FormatError(.io, "cannot decompress zip entry '\(entry.name)': \(error)", file: file.url)
            }
        } else {
            data = Data(file.bytes(offset: entry.dataOffset, length: entry.size))
        }
        guard data.count == entry.size, data.crc32(checksum: 0) == entry.crc32 else {
            throw FormatError(.corrupt, "corrupt zip archive: entry '\(entry.name)' fails its CRC-32 check", file: file.url)
        }
        return [UInt8](data)
    }
}
