import ArgumentParser
import Glibc
import TetherClient
import TetherProtocol

/// Which sessions a verb acts on: by name pattern, local Id or instance id, optionally
/// narrowed to computers, which are then asked what they have (see `resolve`).
struct SelectorArguments: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Sessions whose name matches PATTERN (* and ? wildcards); repeatable and comma-separated, like PowerShell's -Name a,b.",
        valueName: "PATTERN"))
    var name: [String] = []

    @Option(help: ArgumentHelp("Sessions with these local Ids: N, A..B or a comma list, repeatable (see tether get).", valueName: "ID"))
    var id: [IdSet] = []

    @Option(name: .customLong("instance-id"), help: ArgumentHelp(
        "The sessions with these instance ids (UUIDs; repeatable and comma-separated).", valueName: "UUID"))
    var instanceID: [String] = []

    @Option(help: ArgumentHelp(
        "Only sessions on these computers (comma-separated, repeatable). They are asked: sessions started elsewhere are found, ones removed there leave this client's list.",
        valueName: "HOST"), completion: .custom(HostCompletion.complete))
    var computer: [String] = []

    var computers: [String] { splitList(computer) }
    var names: [String] { splitList(name) }
    var instanceIDs: [String] { splitList(instanceID).map { $0.lowercased() } }

    var hasSessionFilter: Bool { !names.isEmpty || !id.isEmpty || !instanceIDs.isEmpty }

    var describe: String {
        var parts: [String] = []
        if !names.isEmpty { parts.append("--name \(names.joined(separator: ","))") }
        if !id.isEmpty { parts.append("--id \(id.map(\.text).joined(separator: ","))") }
        if !instanceIDs.isEmpty { parts.append("--instance-id \(instanceIDs.joined(separator: ","))") }
        if !computers.isEmpty { parts.append("--computer \(computers.joined(separator: ","))") }
        return parts.joined(separator: " ")
    }

    /// Each kind of selector narrows; within one kind, any of its values selects.
    func matches(_ session: LocalSession) -> Bool {
        if !id.isEmpty, !id.contains(where: { $0.contains(session.id) }) { return false }
        if !names.isEmpty, !names.contains(where: { wildcardMatch($0, session.name) }) { return false }
        if !instanceIDs.isEmpty, !instanceIDs.contains(session.instanceID.lowercased()) { return false }
        if !computers.isEmpty, !computers.contains(session.computerName) { return false }
        return true
    }

    /// What the host can filter by itself (one name pattern, one instance id); with
    /// several, the host lists more and `matches` narrows.
    var hostFilter: SessionFilter {
        SessionFilter(name: names.count == 1 ? names[0] : nil,
                      instanceID: instanceIDs.count == 1 ? instanceIDs[0] : nil)
    }

    /// Values given that matched none of `targets`: a name without wildcards, a single
    /// Id, an instance id (a pattern may rightly match nothing among several).
    func unmatched(by targets: [SessionTarget]) -> [String] {
        var missing: [String] = []
        for name in names where !name.contains(where: { "*?[".contains($0) }) {
            if !targets.contains(where: { $0.name == name }) { missing.append("no session named \(name)") }
        }
        for single in id.flatMap(\.singles) where !targets.contains(where: { $0.local.id == single }) {
            missing.append("no session with Id \(single)")
        }
        for instance in instanceIDs where !targets.contains(where: { $0.instanceID.lowercased() == instance }) {
            missing.append("no session with instance id \(instance)")
        }
        return missing
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
        if selector.computers.isEmpty || !selector.id.isEmpty {
            if known.isEmpty {
                throw TetherClientError(.usage, "no session in this client's list matches \(selector.describe)"
                    + (selector.computers.isEmpty ? "; add --computer HOST to look on a host, or see tether get" : "; see tether get"))
            }
            let targets = known.map { SessionTarget(local: $0) }
            reportUnmatched(selector, targets)
            return targets
        }
        let filter = selector.hostFilter
        let found: [[SessionTarget]] = await concurrentMap(selector.computers) { computer in
            do {
                let host = try await pool.host(computer)
                let summaries = try await host.sessions(filter: filter).filter { summary in
                    (selector.names.isEmpty || selector.names.contains { wildcardMatch($0, summary.name) })
                        && (selector.instanceIDs.isEmpty || selector.instanceIDs.contains(summary.instanceID.lowercased()))
                }
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
        if failures.isEmpty { reportUnmatched(selector, targets) }
        return targets.sorted { $0.local.id < $1.local.id }
    }

    /// A value of the selector that matched nothing is an error (exit 1), as PowerShell
    /// reports a -Name it can't find; the verb still acts on what the others matched.
    private func reportUnmatched(_ selector: SelectorArguments, _ targets: [SessionTarget]) {
        for missing in selector.unmatched(by: targets) {
            failures.report(TetherClientError(.usage, "\(missing) (\(selector.describe)); see tether get"))
        }
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
