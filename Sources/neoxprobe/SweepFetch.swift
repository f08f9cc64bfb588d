import ArgumentParser
import Formats
import Foundation
import Hub
import Sweep

/// `sweep --fetch`: the suite's checkpoints come from the Hub as the sweep goes (see
/// `SweepCheckpointSource`), into the Hugging Face cache.
///
/// What this sweep fetched itself is written down, before each download starts, in
/// `RESULTS/.fetched.json`; only those files are ever removed (never what was in the cache before),
/// and a rerun after `kill -9` still knows them (a download cut short resumes from its `.incomplete`).
final class SweepFetchSource: SweepCheckpointSource, @unchecked Sendable {
    let client: HubClient
    let repository: HubRepository
    let cache: HubCache
    let jobs: Int
    let root: URL
    let checkpoints: [SweepCheckpoint]
    /// Revision name → its listing and default file selection.
    let plans: [String: HubRevisionPlan]
    private let ledgerURL: URL
    private let lock = NSLock()
    /// What this sweep put on disk and has not removed yet.
    private var ledger: Ledger

    struct Ledger: Codable {
        /// Revision → the snapshot links it created, and whether it wrote `refs/<revision>`.
        var revisions: [String: Entry] = [:]
        /// Blobs (etags) it created.
        var blobs: Set<String> = []
    }

    struct Entry: Codable {
        var files: [String] = []
        var ref = false
    }

    init(repository: HubRepository, client: HubClient, results: URL, jobs: Int) throws {
        self.client = client
        self.repository = repository
        self.jobs = jobs
        let cache = client.cache(repository)
        self.cache = cache
        root = cache.folder
        let refs = try client.revisions(repository, ["all"]).filter { HubAudit.step($0.name) != nil }
        var plans: [String: HubRevisionPlan] = [:]
        for ref in refs { plans[ref.name] = try client.plan(repository, ref) }
        self.plans = plans
        checkpoints = refs.map { SweepCheckpoint(step: HubAudit.step($0.name)!, name: $0.name, directory: cache.snapshot($0.commit)) }
            .sorted { $0.step < $1.step }
        ledgerURL = results.appendingPathComponent(".fetched.json")
        if let data = try? Data(contentsOf: ledgerURL) {
            guard let saved = try? JSONDecoder().decode(Ledger.self, from: data) else {
                throw CommandFailure("\(ledgerURL.path) is not the list of checkpoint files a sweep --fetch wrote; move it away to continue")
            }
            ledger = saved
        } else {
            ledger = Ledger()
        }
    }

    /// The LFS-hash audit of every stepN revision, as run.json records it.
    func auditRecord() throws -> Data {
        let rows = HubAudit.rows(checkpoints.compactMap { plans[$0.name] })
        return try JSONSerialization.data(withJSONObject: HubAudit.json(rows, repository: repository), options: [.sortedKeys])
    }

    private func etag(_ file: HubFile) -> String { file.lfsSHA256 ?? file.blobID ?? "" }

    func prepare(_ checkpoint: SweepCheckpoint) throws {
        try prepare(checkpoint, metadataOnly: false)
    }

    func prepareMetadata(_ checkpoint: SweepCheckpoint) throws {
        try prepare(checkpoint, metadataOnly: true)
    }

    private func prepare(_ checkpoint: SweepCheckpoint, metadataOnly: Bool) throws {
        guard var plan = plans[checkpoint.name] else { return }
        let wanted = metadataOnly ? plan.files.filter { HubFileSelection.companions.contains($0.path) } : plan.files
        let missing = wanted.filter { cache.etag(commit: plan.commit, path: $0.path) == nil }
        guard !missing.isEmpty else { return }
        try lock.withLock {
            var entry = ledger.revisions[checkpoint.name] ?? Entry()
            for file in missing {
                if !entry.files.contains(file.path) { entry.files.append(file.path) }
                if !FileManager.default.fileExists(atPath: cache.blob(etag(file)).path) { ledger.blobs.insert(etag(file)) }
            }
            if cache.commit(forRevision: checkpoint.name) == nil { entry.ref = true }
            ledger.revisions[checkpoint.name] = entry
            try saveLedger()
        }
        plan.files = missing
        _ = try client.fetch(repository, [plan], jobs: jobs)
    }

    func release(_ checkpoint: SweepCheckpoint, stillNeeded: [SweepCheckpoint]) throws {
        try lock.withLock {
            guard let entry = ledger.revisions[checkpoint.name], let plan = plans[checkpoint.name] else { return }
            let fileManager = FileManager.default
            for path in entry.files {
                try? fileManager.removeItem(at: cache.pointer(commit: plan.commit, path: path))
            }
            ledger.revisions[checkpoint.name] = nil
            // A blob this sweep created goes once no checkpoint still to be read lists it and no
            // remaining snapshot links it (checkpoints with identical weights share one blob).
            let needed = Set(stillNeeded.compactMap { plans[$0.name] }.flatMap { $0.files.map(etag) })
            let linked = Set(plans.values.flatMap { plan in plan.files.compactMap { cache.etag(commit: plan.commit, path: $0.path) } })
            for blob in plan.files.map(etag) where ledger.blobs.contains(blob) && !needed.contains(blob) && !linked.contains(blob) {
                try? fileManager.removeItem(at: cache.blob(blob))
                ledger.blobs.remove(blob)
            }
            let snapshot = cache.snapshot(plan.commit)
            if (try? fileManager.contentsOfDirectory(atPath: snapshot.path))?.isEmpty == true {
                try? fileManager.removeItem(at: snapshot)
                if entry.ref { try? fileManager.removeItem(at: cache.ref(checkpoint.name)) }
            }
            try saveLedger()
        }
    }

    private func saveLedger() throws {
        if ledger.revisions.isEmpty && ledger.blobs.isEmpty {
            try? FileManager.default.removeItem(at: ledgerURL)
            return
        }
        try FileManager.default.createDirectory(at: ledgerURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(encoder.encode(ledger), to: ledgerURL)
    }
}

/// `--keep-checkpoints N|all`.
enum KeepCheckpoints: ExpressibleByArgument, Equatable {
    case all
    case count(Int)

    init?(argument: String) {
        if argument == "all" {
            self = .all
        } else if let n = Int(argument), n >= 0 {
            self = .count(n)
        } else {
            return nil
        }
    }

    var limit: Int? { if case .count(let n) = self { return n } else { return nil } }
}

extension SweepCommand {
    /// The Hub's part of a sweep's options: with `--fetch` the checkpoint source; for a suite named
    /// ORG/NAME, the audit of its revisions for run.json (from the Hub's listings when fetching,
    /// from the cache otherwise).
    func addHubOptions(_ options: inout SweepOptions) throws {
        let isDirectory = FileManager.default.fileExists(atPath: suite)
        guard !isDirectory, let repository = try? HubRepository(suite) else {
            if fetch { throw CommandFailure("--fetch: --suite must name a Hub model (ORG/NAME), got '\(suite)'") }
            return
        }
        if fetch {
            let client = HubClient(environment: try HubEnvironment())
            let source = try SweepFetchSource(repository: repository, client: client, results: URL(fileURLWithPath: out), jobs: 4)
            options.checkpointSource = source
            options.keepCheckpoints = keepCheckpoints.limit
            options.auditRecord = try source.auditRecord()
        } else if var environment = try? HubEnvironment() {
            environment.offline = true
            let client = HubClient(environment: environment)
            if let refs = try? client.revisions(repository, ["all"]).filter({ HubAudit.step($0.name) != nil }), !refs.isEmpty,
               let plans = try? refs.map({ try client.plan(repository, $0) }) {
                options.auditRecord = try JSONSerialization.data(withJSONObject: HubAudit.json(HubAudit.rows(plans), repository: repository),
                                                                 options: [.sortedKeys])
            }
        }
    }
}
