import Foundation

/// Where the command line looks for models, tokenizers and LAMBADA when it is not given them
/// explicitly. The libraries assume no folder layout; these are this tool's deployment
/// conventions, tried in order under three roots:
/// 1. the current directory (a checkout of this repository, with the shared data beside it);
/// 2. the checkout the executable was built in (the nearest folder above `.build/…/neoxprobe`
///    holding `Sources/neoxprobe`), so the defaults work from any directory;
/// 3. the installation (`make install`: `PREFIX/bin/neoxprobe` finds `PREFIX/share/neoxprobe`).
enum SearchPaths {
    /// The roots above, without duplicates.
    static let roots: [URL] = {
        var roots = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)]
        let binDirectory = executable.deletingLastPathComponent()
        // .build/release/neoxprobe is a link into .build/<triple>/release/: up to four folders.
        var folder = binDirectory
        for _ in 0..<4 {
            folder = folder.deletingLastPathComponent()
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("Sources/neoxprobe").path) {
                roots.append(folder)
                break
            }
        }
        roots.append(binDirectory.deletingLastPathComponent().appendingPathComponent("share/neoxprobe", isDirectory: true))
        var seen = Set<String>()
        return roots.map(\.standardizedFileURL).filter { seen.insert($0.path).inserted }
    }()

    /// This executable, links resolved (`/proc/self/exe` on Linux: argv[0] may be a bare name found on PATH).
    static var executable: URL {
        let proc = URL(fileURLWithPath: "/proc/self/exe")
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: proc.path) {
            return URL(fileURLWithPath: target)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    }

    private static func under(_ relative: [String]) -> [URL] {
        roots.flatMap { root in relative.map { root.appendingPathComponent($0).standardizedFileURL } }
    }

    /// `Models/NAME` and `Models/ORG--NAME/REVISION` (see Models/README.md).
    static let modelFolders = under(["Models"])

    /// The repository's (or installation's) `tokenizer/` folder, then the shared GPT-NeoX-20B tokenizer.
    static let tokenizers = under(["tokenizer/20B_tokenizer.json", "tokenizer/tokenizer.json",
                                   "../shared/tokenizer/20B_tokenizer.json"])

    /// LAMBADA's test set: the shared copy beside a checkout, or the installation's.
    static let lambada = under(["../shared/data/lambada/lambada_test.jsonl", "data/lambada/lambada_test.jsonl"])

    /// The first existing file of `candidates`, or nil.
    static func firstFile(_ candidates: [URL]) -> URL? {
        candidates.first { url in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }
}
