import ArgumentParser
import TetherClient
import TetherProtocol

struct Get: AsyncParsableCommand {
    enum StateFilter: String, ExpressibleByArgument, CaseIterable {
        case all, opened, disconnected, closed, broken
    }

    static let configuration = CommandConfiguration(
        abstract: "List sessions with their current state.",
        discussion: prose("""
        Without --computer: this client's sessions, with live state from their hosts
        (asked concurrently). A host that cannot be reached is reported on stderr and its
        sessions are shown with State Unknown. Sessions a host no longer has are shown
        once as Closed and then dropped from the list.

        With --computer: every session of your user on those computers, whichever client
        started it; sessions new to this client get a local Id.

        State is relative to this client: Opened (held here), Disconnected (free, or held
        by another client), Closed, Broken. Availability: Available (held here, idle),
        Busy (held here and running, or held by another client — see HeldBy), None.

        --name, --id and --instance-id take several values (repeated, or comma-separated
        like PowerShell's -Name a,b) and list sessions matching any of them. A filter that
        matches nothing lists nothing and exits 0, as Get-PSSession does; the verbs that
        act (invoke, connect, disconnect, receive, remove) call that an error.

        Examples:
          tether get
          tether get --computer web1,web2
          tether get --name 'deploy*' --state disconnected
          tether get --id 2..5 --json
          tether get --name web,db --name 'tmp*'
        """))

    @Option(help: ArgumentHelp("Ask these computers for all their sessions (comma-separated, repeatable).", valueName: "HOST"),
            completion: .custom(HostCompletion.complete))
    var computer: [String] = []

    @Option(help: ArgumentHelp("Only sessions whose name matches PATTERN (* and ? wildcards; repeatable and comma-separated).", valueName: "PATTERN"))
    var name: [String] = []

    @Option(help: ArgumentHelp("Only these local Ids: N, A..B or a comma list (repeatable).", valueName: "ID"))
    var id: [IdSet] = []

    @Option(name: .customLong("instance-id"), help: ArgumentHelp("Only the sessions with these instance ids (repeatable and comma-separated).", valueName: "UUID"))
    var instanceID: [String] = []

    private var names: [String] { splitList(name) }
    private var instanceIDs: [String] { splitList(instanceID).map { $0.lowercased() } }

    private func nameMatches(_ text: String) -> Bool { names.isEmpty || names.contains { wildcardMatch($0, text) } }
    private func instanceMatches(_ text: String) -> Bool { instanceIDs.isEmpty || instanceIDs.contains(text.lowercased()) }
    private func idMatches(_ local: Int?) -> Bool { id.isEmpty || (local.map { n in id.contains { $0.contains(n) } } ?? false) }

    @Option(help: "Only sessions in this state: all, opened, disconnected, closed, broken.")
    var state: StateFilter = .all

    @Option(help: "Only sessions of this configuration.")
    var configuration: String?

    @Flag(help: "Print a JSON array instead of a table: the sessions, then an error object per failure (schema: docs/json.md).")
    var json = false

    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func run() async throws {
        try await reportingErrors(json: json) {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(splitList(computer).isEmpty ? try localComputers() : splitList(computer), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let computers = splitList(computer)
            var rows = computers.isEmpty ? try await localRows(context) : try await remoteRows(context, computers)
            await context.pool.closeAll()
            rows = rows.filter(keep)
            // A running session with a reason is one the host had to recover (its session
            // table was lost): say so where a person looks, not only in the JSON.
            for row in rows where (row.state == .opened || row.state == .disconnected) {
                if let reason = row.reason { Terminal.shared.err("tether: \(row.computerName): session '\(row.name)': \(reason)\n") }
            }
            rows.sort { ($0.id ?? Int.max, $0.computerName) < ($1.id ?? Int.max, $1.computerName) }
            SessionTable.print(rows, json: json, failures: context.failures)
            try context.failures.exitIfFailed()
        }
    }

    private func keep(_ row: SessionRow) -> Bool {
        if !idMatches(row.id) || !nameMatches(row.name) || !instanceMatches(row.instanceID) { return false }
        if let configuration, row.configuration != configuration { return false }
        switch state {
        case .all: return true
        case .opened: return row.state == .opened
        case .disconnected: return row.state == .disconnected
        case .closed: return row.state == .closed
        case .broken: return row.state == .broken
        }
    }

    /// A list entry the host's answer to this `get`'s filter would have to include.
    private func matchesFilter(_ local: LocalSession) -> Bool {
        if !nameMatches(local.name) || !instanceMatches(local.instanceID) { return false }
        if let configuration, local.configuration != configuration { return false }
        return true
    }

    /// This client's list, refreshed from each host.
    /// The computers of the listed sessions this `get` would ask about (for `-G`).
    private func localComputers() throws -> [String] {
        let known = try ClientHome.default.sessions.all().filter { local in
            idMatches(local.id) && nameMatches(local.name) && instanceMatches(local.instanceID)
        }
        var seen = Set<String>()
        return known.map(\.computerName).filter { seen.insert($0).inserted }
    }

    private func localRows(_ context: CommandContext) async throws -> [SessionRow] {
        let known = try context.store.all().filter { local in
            idMatches(local.id) && nameMatches(local.name) && instanceMatches(local.instanceID)
        }
        let byComputer = Dictionary(grouping: known, by: \.computerName)
        let perHost: [(rows: [SessionRow], gone: [String])] = await concurrentMap(byComputer.keys.sorted()) { computer in
            let locals = byComputer[computer] ?? []
            do {
                let host = try await context.pool.host(computer)
                let live = try await host.sessions()
                let byID = Dictionary(live.map { ($0.instanceID, $0) }, uniquingKeysWith: { a, _ in a })
                var rows: [SessionRow] = []
                var gone: [String] = []
                for local in locals {
                    if let summary = byID[local.instanceID] {
                        rows.append(SessionRow(local: local, summary: summary))
                    } else {
                        // The host may remember why it is gone (removed after an idle timeout).
                        let tombstone = try? await host.sessions(filter: SessionFilter(instanceID: local.instanceID)).first
                        if let tombstone, tombstone.instanceID == local.instanceID {
                            rows.append(SessionRow(local: local, summary: tombstone))
                        } else {
                            rows.append(SessionRow(local: local, state: .closed, reason: "no longer on the host"))
                        }
                        gone.append(local.instanceID)
                    }
                }
                return (rows, gone)
            } catch {
                context.failures.report(error, host: computer)
                return (locals.map { SessionRow(local: $0, state: .unknown, reason: Failures.message(for: error)) }, [])
            }
        }
        try context.store.forget(instanceIDs: Set(perHost.flatMap(\.gone)))
        return perHost.flatMap(\.rows)
    }

    /// Everything on the named computers; new sessions join this client's list.
    private func remoteRows(_ context: CommandContext, _ computers: [String]) async throws -> [SessionRow] {
        // The host filters by one pattern or instance id; several are narrowed here.
        let filter = SessionFilter(name: names.count == 1 ? names[0] : nil,
                                   instanceID: instanceIDs.count == 1 ? instanceIDs[0] : nil, configuration: configuration)
        let perHost: [[SessionRow]] = await concurrentMap(computers) { computer in
            do {
                let host = try await context.pool.host(computer)
                let summaries = try await host.sessions(filter: filter).filter {
                    nameMatches($0.name) && instanceMatches($0.instanceID)
                }
                let locals = try context.record(summaries)
                try context.forgetStale(on: computer, matching: matchesFilter, listed: summaries)
                return zip(locals, summaries).map { SessionRow(local: $0, summary: $1) }
            } catch {
                context.failures.report(error, host: computer)
                return []
            }
        }
        return perHost.flatMap { $0 }
    }
}
