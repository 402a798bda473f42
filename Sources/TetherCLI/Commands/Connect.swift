import ArgumentParser
import TetherClient
import TetherProtocol

struct Connect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take disconnected sessions into this client (State Opened).",
        discussion: prose("""
        Claims each selected session for this client; sessions found on a --computer get
        a local Id. Refused while another client holds a session (the message names it),
        unless --force, which takes it over (the other client is told).

        Examples:
          tether connect --computer web1 --name deploy
          tether connect --id 4
          tether connect --computer web1 --instance-id 0b7c… --force
        """))

    @OptionGroup(title: "Session selection") var selector: SelectorArguments

    @Flag(help: "Take sessions another client holds.")
    var force = false

    @Flag(help: "Print a JSON array instead of a table: the sessions, then an error object per failure (schema: docs/json.md).")
    var json = false

    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func run() async throws {
        try await reportingErrors(json: json) {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: selector), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let targets = try await context.resolve(selector)
            let rows: [SessionRow?] = await concurrentMap(targets) { [self] target in
                let computer = target.computerName
                do {
                    let host = try await context.pool.host(computer)
                    let before = try await host.sessions(filter: SessionFilter(instanceID: target.instanceID)).first
                    do {
                        let summary = try await host.claim(instanceID: target.instanceID, force: force)
                        if let holder = before?.heldElsewhere {
                            Terminal.shared.err("tether: \(computer): took over session \(target.name) from \(holder.clientHost) (held since \(SessionTable.formatTime(holder.since)))\n")
                        }
                        return SessionRow(local: target.local, summary: summary)
                    } catch let error as TetherClientError where error.remoteCode == .heldElsewhere {
                        let holder = before?.heldElsewhere
                        let who = holder.map { "client \($0.clientHost) (since \(SessionTable.formatTime($0.since)))" } ?? "another client"
                        throw TetherClientError(.remote(.heldElsewhere), host: computer,
                            "session \(target.name) is held by \(who); use --force to take it over")
                    }
                } catch {
                    context.failures.report(error, host: computer, session: target.local)
                    return nil
                }
            }
            await context.pool.closeAll()
            SessionTable.print(rows.compactMap { $0 }, json: json, failures: context.failures)
            try context.failures.exitIfFailed()
        }
    }
}
