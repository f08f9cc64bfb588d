import ArgumentParser
import Foundation
import Hub

/// `neoxprobe fetch ORG/NAME --revisions …`: checkpoints from the Hugging Face Hub into the
/// Hugging Face cache, in huggingface_hub's own layout, so every Python tool finds them too.
struct FetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Download revisions of a Hub model into the Hugging Face cache (resumable, sha256-verified).",
        discussion: """
        By default only what the engine needs: config.json, the weights in the best layout present (sharded \
        safetensors, model.safetensors, sharded pytorch_model.bin, pytorch_model.bin: one of them), and \
        tokenizer/generation files when present. Environment, as huggingface_hub reads it: HF_ENDPOINT, \
        HF_HUB_CACHE / HUGGINGFACE_HUB_CACHE / HF_HOME / XDG_CACHE_HOME (the cache), HF_TOKEN or \
        $HF_HOME/token (gated repositories), HF_HUB_OFFLINE, HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT.
        """)

    @Argument(help: "The model: ORG/NAME (e.g. EleutherAI/pythia-160m).")
    var repository: String

    @Option(name: .long, help: ArgumentHelp("Revisions: all (every branch and tag), or a comma-separated list (step0,step1000). Default: main.",
                                            valueName: "revisions"))
    var revisions: String = "main"

    @Option(name: .long, help: ArgumentHelp("Comma-separated files or globs instead of the default selection (e.g. config.json,*.safetensors).",
                                            valueName: "files"))
    var files: String?

    @Option(name: .long, help: "Files downloaded at once (1 to 64).")
    var jobs: Int = 4

    @Flag(name: .long, help: "Print one JSON object instead of a line per revision.")
    var json = false

    func validate() throws {
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64, got \(jobs)") }
        guard !HubOptions.list(revisions).isEmpty else { throw ValidationError("--revisions names no revisions") }
        if let files, HubOptions.list(files).isEmpty { throw ValidationError("--files names no files") }
    }

    func run() throws {
        let repo = try HubRepository(repository)
        let client = HubClient(environment: try HubEnvironment())
        let refs = try client.revisions(repo, HubOptions.list(revisions))
        let plans = try refs.map { try client.plan(repo, $0, patterns: files.map(HubOptions.list)) }
        let cache = client.cache(repo)
        let pending = plans.flatMap(\.files).filter { file in
            !FileManager.default.fileExists(atPath: cache.blob(file.lfsSHA256 ?? file.blobID ?? "-").path)
        }
        let progress = HubProgress(label: "fetch \(repo)", total: pending.reduce(0) { $0 + $1.size }, files: plans.reduce(0) { $0 + $1.files.count })
        let fetched: [HubFetchedRevision]
        do {
            fetched = try client.fetch(repo, plans, jobs: jobs, progress: progress)
            progress.finish()
        } catch {
            progress.finish()
            throw error
        }
        if json {
            let object: [String: Any] = [
                "repository": repo.description, "cache": cache.folder.path,
                "revisions": fetched.map { revision in
                    [
                        "revision": revision.revision, "commit": revision.commit, "snapshot": revision.snapshot.path,
                        "downloaded_bytes": revision.downloaded,
                        "files": revision.files.map { ["path": $0.path, "etag": $0.etag, "size": $0.size, "downloaded": $0.downloaded, "cached": $0.wasCached] as [String: Any] },
                    ] as [String: Any]
                },
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        for revision in fetched {
            let size = revision.files.reduce(Int64(0)) { $0 + $1.size }
            print("\(revision.revision)  \(revision.commit.prefix(8))  \(revision.files.count) files  \(HubProgress.bytes(size)) "
                + "(\(HubProgress.bytes(revision.downloaded)) downloaded)  \(revision.snapshot.path)")
        }
        print("fetch: \(fetched.count) revisions of \(repo) in \(cache.folder.path)")
    }
}

/// What the Hub commands share.
enum HubOptions {
    /// A comma-separated list, blanks dropped.
    static func list(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
