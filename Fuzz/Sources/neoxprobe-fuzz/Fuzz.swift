import Foundation

/// The command line's error type, as `TokenFile.swift` (shared with `neoxprobe`) throws it.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The target this process fuzzes, from `NEOXPROBE_FUZZ_TARGET` (checked once, at start-up).
let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["NEOXPROBE_FUZZ_TARGET"] ?? ""
    if name == "list" {
        for target in fuzzTargets { print("\(target.name)\t\(target.summary)") }
        exit(0)
    }
    guard let target = fuzzTargets.first(where: { $0.name == name }) else {
        let names = fuzzTargets.map(\.name).joined(separator: ", ")
        FileHandle.standardError.write(Data("NEOXPROBE_FUZZ_TARGET must be one of: \(names) (or 'list')\n".utf8))
        exit(2)
    }
    return target
}()

let scratch = Scratch.make()

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    _ = selectedTarget
    atexit { try? FileManager.default.removeItem(at: scratch.directory) }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    do { try selectedTarget.run(data, scratch) } catch {
        // A clean refusal. Its message must be printable (describing it must not trap either).
        _ = String(describing: error)
    }
    return 0
}
