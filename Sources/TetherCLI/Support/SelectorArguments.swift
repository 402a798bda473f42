import ArgumentParser
import Glibc
import TetherClient
import TetherProtocol

/// Which sessions a verb acts on: by name pattern, local Id or instance id, optionally
/// narrowed to computers, which are then asked what they have (see `resolve`).
struct SelectorArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Sessions whose name matches PATTERN (* and ? wildcards).", valueName: "PATTERN"))
    var name: String?

    @Option(help: ArgumentHelp("Sessions with these local Ids: N, A..B or a comma list (see tether get).", valueName: "ID"))
    var id: IdSet?

    @Option(name: .customLong("instance-id"), help: ArgumentHelp("The session with this instance id (UUID).", valueName: "UUID"))
    var instanceID: String?

    @Option(help: ArgumentHelp(
        "Only sessions on these computers (comma-separated, repeatable). They are asked: sessions started elsewhere are found, ones removed there leave this client's list.",
        valueName: "HOST"))
    var computer: [String] = []

    var computers: [String] { splitList(computer) }

    var hasSessionFilter: Bool { name != nil || id != nil || instanceID != nil }

    var describe: String {
        var parts: [String] = []
        if let name { parts.append("--name \(name)") }
        if id != nil { parts.append("--id") }
        if let instanceID { parts.append("--instance-id \(instanceID)") }
        if !computers.isEmpty { parts.append("--computer \(computers.joined(separator: ","))") }
        return parts.joined(separator: " ")
    }

    func matches(_ session: LocalSession) -> Bool {
        if let id, !id.contains(session.id) { return false }
        if let name, !wildcardMatch(name, session.name) { return false }
        if let instanceID, session.instanceID.lowercased() != instanceID.lowercased() { return false }
        if !computers.isEmpty, !computers.contains(session.computerName) { return false }
        return true
    }
}

/// Shell wildcard match (`*`, `?`, `[…]`), as the host applies to `list {name}`.
func wildcardMatch(_ pattern: String, _ text: String) -> Bool {
    fnmatch(pattern, text, 0) == 0
}

/// A session a verb acts on.
struct SessionTarget: Sendable {
    var local: LocalSession
    var computerName: String { local.computerName }
    var instanceID: String { local.instanceID }
    var name: String { local.name }
}

extension CommandContext {
    /// Resolves a selector to sessions. Without `--computer` (or with `--id`, which only
    /// this client's list knows): this client's list. With `--computer`: each computer is
    /// asked, so what is acted on is what is there now — sessions started elsewhere join
    /// the list (that is how they get a local Id), and entries of the list that the host
    /// no longer has (removed by another client, timed out) leave it. Unreachable
    /// computers are reported and skipped.
    func resolve(_ selector: SelectorArguments) async throws -> [SessionTarget] {
        guard selector.hasSessionFilter || !selector.computers.isEmpty else {
            throw ValidationError("select sessions with --name, --id or --instance-id (optionally with --computer HOST)")
        }
        let known = try store.all().filter { selector.matches($0) }
        if selector.computers.isEmpty || selector.id != nil {
            if known.isEmpty {
                throw TetherClientError(.usage, "no session in this client's list matches \(selector.describe)"
                    + (selector.computers.isEmpty ? "; add --computer HOST to look on a host, or see tether get" : "; see tether get"))
            }
            return known.map { SessionTarget(local: $0) }
        }
        let filter = SessionFilter(name: selector.name, instanceID: selector.instanceID)
        let found: [[SessionTarget]] = await concurrentMap(selector.computers) { computer in
            do {
                let host = try await pool.host(computer)
                let summaries = try await host.sessions(filter: filter)
                let locals = try record(summaries)
                try forgetStale(on: computer, matching: selector.matches, listed: summaries)
                return locals.map { SessionTarget(local: $0) }
            } catch {
                failures.report(error, host: computer)
                return []
            }
        }
        let targets = found.flatMap { $0 }
        if targets.isEmpty && failures.isEmpty {
            throw TetherClientError(.usage, "no session matches \(selector.describe)")
        }
        return targets.sorted { $0.local.id < $1.local.id }
    }

    /// After `computer` listed every session matching a filter: entries of this client's
    /// list on it that match the filter too but were not listed are gone from the host.
    func forgetStale(on computer: String, matching matches: (LocalSession) -> Bool,
                     listed: [SessionSummary]) throws {
        let listedIDs = Set(listed.map { $0.instanceID.lowercased() })
        let stale = try store.all().filter {
            $0.computerName == computer && matches($0) && !listedIDs.contains($0.instanceID.lowercased())
        }
        try store.forget(instanceIDs: Set(stale.map(\.instanceID)))
    }
}
