import ArgumentParser
import TetherClient
import TetherProtocol

struct Disconnect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Let go of sessions; they and their commands go on on the host.",
        discussion: prose("""
        Releases each selected session: its State becomes Disconnected and any client
        (this one or another machine) can connect to it or receive its output later. A
        running command keeps running; its output is kept (up to the buffer limit; in
        block mode the command then waits, in drop mode the oldest output is dropped).
        The idle timeout counts from now.

        Examples:
          tether disconnect --name deploy
          tether disconnect --id 2 --idle-timeout 86400
          tether disconnect --name 'build*' --output-buffering drop
        """))

    @OptionGroup(title: "Session selection") var selector: SelectorArguments

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp(
        "Seconds the session is kept while no client is attached and no command runs (the host's minimum, normally 60, applies).", valueName: "SEC"))
    var idleTimeout: Double?

    @Option(name: .customLong("output-buffering"), help: "block or drop, while nobody reads the output.")
    var outputBuffering: OutputBuffering?

    @Flag(help: "Print a JSON array instead of a table: the sessions, then an error object per failure (schema: docs/json.md).")
    var json = false

    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func validate() throws {
        // The floor is the host's to set (an admin may lower it); the host names it when refusing.
        if let idleTimeout, !(idleTimeout > 0) { throw ValidationError("--idle-timeout must be a positive number of seconds") }
    }

    func run() async throws {
        try await reportingErrors(json: json) {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: selector), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let targets = try await context.resolve(selector)
            let rows: [SessionRow?] = await concurrentMap(targets) { [self] target in
                do {
                    let host = try await context.pool.host(target.computerName)
                    let summary = try await host.release(instanceID: target.instanceID, idleTimeout: idleTimeout,
                                                         outputBuffering: outputBuffering)
                    return SessionRow(local: target.local, summary: summary)
                } catch {
                    context.failures.report(error, host: target.computerName, session: target.local)
                    return nil
                }
            }
            await context.pool.closeAll()
            SessionTable.print(rows.compactMap { $0 }, json: json, failures: context.failures)
            try context.failures.exitIfFailed()
        }
    }
}
