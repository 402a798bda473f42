import ArgumentParser
import TetherClient
import TetherProtocol

struct New: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a session on each computer.",
        discussion: prose("""
        Starts one persistent session per computer (concurrently). This client holds the
        new sessions (State Opened) and lists them with a local Id.

        Examples:
          tether new web1
          tether new web1,web2 --name deploy
          tether new db1 --name backup --idle-timeout 86400 --output-buffering drop
          tether new web1 -p 2222 -l deploy -i ~/.ssh/deploy_ed25519   # remembered by the session
          tether new web1 -G          # what ssh -G says, and the transport tether would use
          tether new web1 --configuration ops     # a restricted endpoint the admin set up
        """))

    @Argument(help: ArgumentHelp("Computers: ssh config aliases or [user@]host (comma-separated).", valueName: "HOST"),
              completion: .custom(HostCompletion.complete))
    var computers: [String]

    @Option(help: "Name of the new sessions (default: chosen by the host).")
    var name: String?

    @Option(help: ArgumentHelp("Session configuration: what the host lets the session do (default bash; tether configurations --computer HOST lists yours).", valueName: "NAME"))
    var configuration: String?

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp(
        "Seconds the session is kept while no client is attached and no command runs (default 7200; the host's minimum, normally 60, applies).", valueName: "SEC"))
    var idleTimeout: Double?

    @Option(name: .customLong("output-buffering"), help: "block or drop: what happens when unread output fills the buffer.")
    var outputBuffering: OutputBuffering?

    @Option(name: .customLong("buffer-limit"), help: ArgumentHelp("Bytes of unread output kept (default 16 MiB, at least 1024).", valueName: "BYTES"))
    var bufferLimit: Int?

    @Option(name: .customLong("job-limit"), help: ArgumentHelp(
        "Jobs that may run at once in the session (default \(JobLimits.defaultConcurrent); see tether job).", valueName: "N"))
    var jobLimit: Int?

    @Flag(help: "Print a JSON array instead of a table: the sessions, then an error object per failure (schema: docs/json.md).")
    var json = false

    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func validate() throws {
        guard !splitList(computers).isEmpty else { throw ValidationError("name at least one computer") }
        // The floor is the host's to set (an admin may lower it); the host names it when refusing.
        if let idleTimeout, !(idleTimeout > 0) { throw ValidationError("--idle-timeout must be a positive number of seconds") }
        if let bufferLimit, let problem = BufferLimit.problem(bufferLimit) { throw ValidationError("--buffer-limit: \(problem)") }
        if let jobLimit, !(1...JobLimits.maxConcurrent).contains(jobLimit) {
            throw ValidationError("--job-limit must be between 1 and \(JobLimits.maxConcurrent)")
        }
    }

    func run() async throws {
        if connection.printConfiguration {
            try ResolvedConfigurations.print(splitList(computers), connection: connection)
            return
        }
        try await reportingErrors(json: json) {
            let context = try CommandContext(connection: connection)
            let all = splitList(computers)
            // On a terminal, several computers: how many are done and failed, below the output.
            let progress = StreamDisplay(showVerbose: false, json: json)
            defer { progress.finish() }
            progress.beginFanOut(total: all.count)
            let rows: [SessionRow?] = await concurrentMap(all) { [self] computer in
                let row = await create(on: computer, context: context)
                progress.targetFinished(failed: row == nil)
                return row
            }
            progress.finish()
            await context.pool.closeAll()
            SessionTable.print(rows.compactMap { $0 }, json: json, failures: context.failures)
            try context.failures.exitIfFailed()
        }
    }

    private func create(on computer: String, context: CommandContext) async -> SessionRow? {
        do {
            let host = try await context.pool.host(computer)
            let session = try await host.createSession(
                name: name, configuration: configuration, idleTimeout: idleTimeout,
                outputBuffering: outputBuffering, bufferLimit: bufferLimit, jobLimit: jobLimit)
            guard let summary = session.summary else {
                throw TetherClientError(.protocolViolation, host: computer, "the host did not describe the new session")
            }
            let local = try context.record([summary]).first
            return SessionRow(local: local, summary: summary)
        } catch {
            context.failures.report(error, host: computer)
            return nil
        }
    }
}
