import ArgumentParser
import TetherClient
import TetherProtocol

struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "End sessions: stop their interpreters and forget them.",
        discussion: prose("""
        Ends each selected session on its host (its interpreter and any running command
        are killed) and drops it from this client's list. A session the host no longer
        has is just dropped from the list. A session another client holds is removed only
        with --force (as connect takes it only with --force); a client following its
        command is told who removed it.

        Examples:
          tether remove --name deploy
          tether remove --id 3
          tether remove --computer web1 --name 'tmp*'
          tether remove --computer web1 --name stuck --force
          tether remove --name 'tmp*' --json     # each removed session, Closed
        """))

    @OptionGroup(title: "Session selection") var selector: SelectorArguments

    @Flag(help: "Remove sessions even if another client holds them.")
    var force = false

    @Flag(help: "Print each removed session in its final state (Closed) as a JSON array, then an error object per failure (schema: docs/json.md).")
    var json = false

    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func run() async throws {
        try await reportingErrors(json: json) {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: selector), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let targets = try await context.resolve(selector)
            let removed: [SessionRow?] = await concurrentMap(targets) { [self] target in
                do {
                    let host = try await context.pool.host(target.computerName)
                    // Only --json shows the session, so only it pays for asking first.
                    let before = json ? try await host.sessions(filter: SessionFilter(instanceID: target.instanceID)).first : nil
                    do {
                        try await host.remove(instanceID: target.instanceID, force: force)
                        return Self.removedRow(target, before: before, by: context.client.clientHost)
                    } catch let error as TetherClientError where [.notFound, .sessionClosed].contains(error.remoteCode) {
                        // Gone already (removed elsewhere, or after its idle timeout: the
                        // host's tombstone says which): just leaves this client's list.
                        if let before, before.instanceID == target.instanceID { return SessionRow(local: target.local, summary: before) }
                        return SessionRow(local: target.local, state: .closed, reason: "no longer on the host")
                    }
                } catch {
                    context.failures.report(error, host: target.computerName, session: target.local)
                    return nil
                }
            }
            await context.pool.closeAll()
            let rows = removed.compactMap { $0 }
            try context.store.forget(instanceIDs: Set(rows.map(\.instanceID)))
            if json { SessionTable.print(rows, json: true, failures: context.failures) }
            try context.failures.exitIfFailed()
        }
    }

    /// The session as it ends: what the host said just before, now Closed and held by nobody.
    private static func removedRow(_ target: SessionTarget, before: SessionSummary?, by clientHost: String) -> SessionRow {
        let reason = "removed by client \(clientHost)"
        guard let before, before.instanceID == target.instanceID else {
            return SessionRow(local: target.local, state: .closed, reason: reason)
        }
        var row = SessionRow(local: target.local, summary: before)
        row.state = .closed
        row.availability = .none
        row.heldElsewhere = nil
        row.reason = reason
        row.info?.busy = false
        row.info?.state = .closed
        row.info?.holder = nil
        row.info?.reason = reason
        return row
    }
}
