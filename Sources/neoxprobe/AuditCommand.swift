import ArgumentParser
import Foundation
import Hub

/// `neoxprobe audit ORG/NAME`: which revisions of a checkpoint suite can be trusted, before a curve
/// is drawn from them (see `HubAudit`).
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Find revisions that serve another revision's weights (from the Hub's LFS hashes) and checkpoints out of order with their step.",
        discussion: """
        From the Hub's tree listings alone (no download): revisions whose weight files have the same sha256 \
        as another revision's. For revisions whose weights are in the Hugging Face cache (and step0 with them): \
        the relative L2 distance of all weights from step0, and the checkpoints farther from step0 than a later one. \
        With HF_HUB_OFFLINE=1 the listings come from the cache alone.
        """)

    @Argument(help: "The model: ORG/NAME (e.g. EleutherAI/pythia-2.8b).")
    var repository: String

    @Option(name: .long, help: ArgumentHelp("Revisions: all (default), or a comma-separated list.", valueName: "revisions"))
    var revisions: String = "all"

    @Flag(name: .long, help: "Skip the distances (loading cached checkpoints).")
    var noLoad = false

    @Flag(name: .long, help: "Print one JSON object instead of the table.")
    var json = false

    func validate() throws {
        guard !HubOptions.list(revisions).isEmpty else { throw ValidationError("--revisions names no revisions") }
    }

    func run() throws {
        let repo = try HubRepository(repository)
        let client = HubClient(environment: try HubEnvironment())
        let rows = try Self.audit(client, repo, revisions: HubOptions.list(revisions), load: !noLoad)
        if json {
            let data = try JSONSerialization.data(withJSONObject: HubAudit.json(rows, repository: repo), options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(HubAudit.table(rows))
        let identical = rows.filter { !$0.identicalTo.isEmpty }
        let outOfOrder = rows.filter { $0.outOfOrderWith != nil }
        let measured = rows.filter { $0.distanceFromStep0 != nil }.count
        print("audit: \(rows.count) revisions; \(identical.count) serve weights identical to another revision's; "
            + "\(measured) measured from the cache, \(outOfOrder.count) out of order with their step")
    }

    /// The rows for `revisions`, with distances for those whose weights the cache holds.
    static func audit(_ client: HubClient, _ repo: HubRepository, revisions: [String], load: Bool) throws -> [HubAudit.Row] {
        let refs = try client.revisions(repo, revisions)
        let plans = try refs.map { try client.plan(repo, $0) }
        var rows = HubAudit.rows(plans)
        guard load else { return rows }
        let cache = client.cache(repo)
        var snapshots: [String: URL] = [:]
        for plan in plans {
            let needed = plan.files.map(\.path)
            if needed.allSatisfy({ cache.etag(commit: plan.commit, path: $0) != nil }) { snapshots[plan.revision] = cache.snapshot(plan.commit) }
        }
        try HubAudit.addDistances(&rows, snapshots: snapshots)
        return rows
    }
}
