import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import TetherClient
import TetherIO
import TetherProtocol

struct Invoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command in sessions (or in temporary sessions on computers).",
        discussion: prose("""
        Runs SCRIPT (bash source; ARGS become "$@") in each selected session. Sessions
        keep their state, so a variable set by one invoke is there for the next.
        Remote stdout goes to stdout, stderr to stderr. Piped or redirected stdin is
        forwarded to the command (a terminal is not). With several sessions the commands
        run concurrently (up to --throttle-limit) and every line is prefixed with
        [computer].

        No command ends the session by accident: `exit N`, a failure under `set -e`
        (`set -euo pipefail` included), an unset variable under `set -u` and `exec
        PROGRAM` end that command with the status `ssh host cmd` would report, in
        --file scripts and nested functions too; variables, functions, aliases, the
        working directory and background jobs stay. errexit, nounset, xtrace and verbose
        are reset at the start of each command; every other option (pipefail, noglob,
        noclobber, every shopt) persists. `exec` with redirections only (`exec >log
        2>&1`, `exec 4<file`) changes the session as in a shell; fds 0 and 3 are each
        command's own. After an unset-variable error or `builtin exit`, bash restarts in
        place with its state, and `jobs`/`wait` forget earlier jobs (they run on). Only
        killing bash (`kill -9 $$`) ends the session (Broken); `tether remove` is the way
        to end it.

        With --tty (one session), the command runs on a terminal on the host, still in the
        session's shell: `[ -t 0 ]` is true, /dev/tty works (sudo, ssh prompts), TERM and
        the window size are yours and resizes reach the program; everything it shows is
        stdout. Your terminal is raw meanwhile and restored however the command ends.
        Keys go to the program: Ctrl-C interrupts the command (exit 130, the session
        stays), Ctrl-\\ quits the program, Ctrl-Z is passed on as a key (no job control).

        With --computer alone, each computer gets a temporary session, removed afterwards.
        With --in-disconnected-session, a new session named --session-name is created on
        each computer, the command is started and the session released at once; collect
        the output later with `tether receive`.

        The command can also write PowerShell's other streams, with commands every
        session has (functions in its shell, and the same as programs on PATH for the
        scripts it runs): tether-warning TEXT (shown as WARNING: TEXT on stderr),
        tether-verbose TEXT (VERBOSE: TEXT, only with --verbose), tether-information TEXT
        (a plain line on stderr) and tether-progress [--completed] PERCENT ACTIVITY
        [STATUS] (PERCENT 0-100, or -1 if unknown): a bar per activity (per computer with
        several) below the output on stderr, drawn only when stderr is a terminal and gone
        when the activity completes or the command ends. With several sessions on a
        terminal, a line below the output counts the computers done and failed. They are
        kept and resumed like the output; --json lists every record with its stream.
        NO_COLOR turns colour off.

        With --as-job, SCRIPT starts as a job in each session (with --computer alone, in a
        new session per computer named asjob-…, kept until tether job remove removes its
        job — its idle timeout is 30 days) and invoke returns at once, printing the jobs;
        the session stays free for other commands. A job reads /dev/null. See tether job.

        If the connection is lost while the command runs, invoke says so on stderr, keeps
        reconnecting (at once, then every 50 ms, after 10 s every 200 ms, for --reconnect-timeout
        seconds, default 300) and picks the output up exactly where it stopped: no line
        lost, repeated or reordered, and the exit status is still the command's. Each
        session resumes on its own. Forwarded stdin cannot be resumed: if the command was
        still reading it, its stdin is closed and invoke says so. If the deadline passes,
        invoke exits 255 and `tether receive` collects the output later.

        Exit status: the remote command's; with several sessions 0 if all succeeded, else
        the first non-zero status in session order. 255 if a host could not be reached
        (or its tether subsystem failed), or if a lost connection cut the command's stdin;
        1 for other errors (busy, not found, a selector matching nothing, stdout not
        writable: a full disk…); 141 (SIGPIPE) if stdout's reader went away (| head).
        Output is acknowledged only once written, so what was not written stays on the
        host: the command goes on and `tether receive` collects the rest (a temporary
        session is removed, as ssh's remote command would end).
        Ctrl-C interrupts the remote commands; a second Ctrl-C stops waiting (exit 130);
        while reconnecting, the first one stops waiting. If a session has not started the
        command after 3 seconds (another command runs, or its runspace does not answer:
        stopped, overloaded), invoke says so on stderr and goes on waiting; Ctrl-C twice
        leaves it (the command starts when the session can, its output kept for receive).

        Examples:
          tether invoke --name deploy -- 'cd /srv/app && git pull'
          tether invoke --id 1 -- 'echo "$1 and $2"' one two
          tether invoke --computer web1,web2 -- uptime
          tether invoke --computer web1 --configuration ops -- systemctl status nginx
          tar c ./site | tether invoke --name deploy -- 'tar x -C /srv/www'
          tether invoke --name deploy --file ./migrate.sh -- --dry-run
          tether invoke --name deploy --tty -- 'sudo systemctl edit app'
          tether invoke --computer db1 --in-disconnected-session --session-name nightly -- ./backup.sh
          tether invoke --computer db1 --in-disconnected-session --session-name logs --output-buffering drop -- 'tail -f app.log'
          tether invoke --name deploy --as-job --job-name build -- 'make -j4 all'
          tether invoke --computer web1,web2 --as-job -- './reindex.sh'
          tether invoke --name deploy --verbose -- 'tether-verbose "pulling"; tether-progress 50 Deploy "half way"'
        """))

    @OptionGroup(title: "Session selection") var selector: SelectorArguments

    @Option(help: ArgumentHelp("Run this local script file (the arguments after -- become its \"$@\").", valueName: "SCRIPT"))
    var file: String?

    @Option(name: .customLong("throttle-limit"), help: "How many sessions run at once.")
    var throttleLimit: Int = 32

    @Flag(name: .customLong("hide-computer-name"), help: "No [computer] prefix on output lines.")
    var hideComputerName = false

    @Flag(help: "Print a JSON array at the end instead of streaming: one object per session (stdout, stderr, exitStatus, error, and records: every record in order with its stream), an error object per computer that failed (schema: docs/json.md).")
    var json = false

    @OptionGroup(title: "Streams") var streams: StreamArguments

    @Flag(name: .customLong("tty"), help: "Run the command on a terminal on the host (one session; the local terminal is raw meanwhile).")
    var tty = false

    @Flag(name: .customLong("no-wait"), help: "Fail at once with \"busy\" if a command runs in the session, instead of waiting for it.")
    var noWait = false

    @Flag(name: .customLong("in-disconnected-session"), help: "Start the command in a new session and release it at once (needs --computer and --session-name).")
    var inDisconnectedSession = false

    @Option(help: ArgumentHelp(
        "Session configuration of the sessions --computer creates (see tether configurations; default bash).",
        valueName: "NAME"))
    var configuration: String?

    @Option(name: .customLong("session-name"), help: "Name of the session --in-disconnected-session creates.")
    var sessionName: String?

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp(
        "With --in-disconnected-session: seconds the new session is kept while no client is attached and no command runs (default 7200; the host's minimum, normally 60, applies).",
        valueName: "SEC"))
    var idleTimeout: Double?

    @Option(name: .customLong("output-buffering"), help: "With --in-disconnected-session: block or drop, when unread output fills the buffer.")
    var outputBuffering: OutputBuffering?

    @Option(name: .customLong("buffer-limit"), help: ArgumentHelp(
        "With --in-disconnected-session: bytes of unread output kept (default 16 MiB, at least 1024).", valueName: "BYTES"))
    var bufferLimit: Int?

    @OptionGroup(title: "Jobs") var asJob: AsJobArguments

    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    @OptionGroup(title: "Resuming after a lost connection") var reconnect: ReconnectArguments

    @Argument(parsing: .remaining, help: ArgumentHelp("SCRIPT and its ARGS (after --).", valueName: "SCRIPT"))
    var command: [String] = []

    func validate() throws {
        if throttleLimit < 1 { throw ValidationError("--throttle-limit must be at least 1") }
        if file == nil && command.isEmpty {
            throw ValidationError("give the command to run after --, e.g. tether invoke --name s -- 'uname -a', or use --file SCRIPT")
        }
        if inDisconnectedSession {
            if selector.computers.isEmpty || sessionName == nil {
                throw ValidationError("--in-disconnected-session needs --computer HOST and --session-name NAME")
            }
            if selector.hasSessionFilter {
                throw ValidationError("--in-disconnected-session creates new sessions: use --computer and --session-name, not --name/--id/--instance-id")
            }
        } else if sessionName != nil || idleTimeout != nil || outputBuffering != nil || bufferLimit != nil {
            throw ValidationError("--session-name, --idle-timeout, --output-buffering and --buffer-limit describe the session --in-disconnected-session creates; for an existing session use tether disconnect (or tether new)")
        }
        try asJob.validate(inDisconnectedSession: inDisconnectedSession, noWait: noWait)
        if let idleTimeout, !(idleTimeout > 0) { throw ValidationError("--idle-timeout must be a positive number of seconds") }
        if let bufferLimit, let problem = BufferLimit.problem(bufferLimit) { throw ValidationError("--buffer-limit: \(problem)") }
        if tty && (json || inDisconnectedSession) {
            throw ValidationError("--tty runs one command on a terminal here: not with --json or --in-disconnected-session")
        }
        if !selector.hasSessionFilter && selector.computers.isEmpty {
            throw ValidationError("select sessions with --name, --id or --instance-id, or computers with --computer")
        }
        if configuration != nil && selector.hasSessionFilter {
            throw ValidationError("--configuration chooses the configuration of sessions --computer creates; an existing session keeps its own")
        }
    }

    /// (script, arguments) from --file or the words after --.
    func scriptAndArguments() throws -> (String, [String]) {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw TetherClientError(.usage, "cannot read script file \(file)")
            }
            return (String(decoding: data, as: UTF8.self), command)
        }
        return (command[0], Array(command.dropFirst()))
    }

    func run() async throws {
        try await reportingErrors(json: json) {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: selector), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let (script, arguments) = try scriptAndArguments()
            if inDisconnectedSession {
                try await startDisconnected(context: context, script: script, arguments: arguments)
                return
            }
            if asJob.asJob {
                try await startJobs(context: context, script: script, arguments: arguments)
                return
            }
            let temporary = !selector.hasSessionFilter
            let jobs: [InvokeJob]
            if temporary {
                jobs = selector.computers.map { InvokeJob(computerName: $0, target: nil) }
            } else {
                jobs = try await context.resolve(selector).map { InvokeJob(computerName: $0.computerName, target: $0) }
            }
            guard !jobs.isEmpty else {
                await context.pool.closeAll()
                if json { Terminal.shared.out(InvokeResult.json([], failures: context.failures.entries)) }
                try context.failures.exitIfFailed()
                return
            }
            if tty && (jobs.count != 1 || selector.computers.count > 1) {
                throw TetherClientError(.usage, "--tty runs the command in one session, but \(jobs.count) are selected")
            }
            let stdinSources = tty ? [.fileDescriptor(0)] : stdinSources(count: jobs.count)
            let running = RunningSessions()
            let reconnecting = ReconnectingTargets()
            InterruptHandler(onFirst: { running.interruptAll() },
                             nothingToInterrupt: { running.isEmpty && reconnecting.any }).install()
            let prefix = !hideComputerName && (jobs.count > 1 || selector.computers.count > 1)
            if jobs.count == 1 && !prefix && !json && !tty {
                // One session's output, unchanged: the keeper writes it into our stdout.
                KeeperDirectOutput.offerStandardOutput()
            }
            var configured = InvokeSettings(script: script, arguments: arguments, wait: !noWait,
                                          json: json, prefixLines: prefix, temporary: temporary,
                                          reconnectTimeout: reconnect.reconnectTimeout,
                                          terminal: tty ? TerminalMode.request() : nil)
            configured.configuration = configuration
            let display = StreamDisplay(showVerbose: streams.showVerbose, json: json, rawTerminal: tty)
            configured.display = display
            let settings = configured
            defer { display.finish() }
            display.beginFanOut(total: jobs.count)
            // Raw while the command runs; restored on every way out (TerminalMode).
            let rawMode = tty ? TerminalMode.enterRaw() : nil
            defer { rawMode?.restore() }
            let indexed = Array(zip(jobs, stdinSources))
            // Hosts that failed while the sessions were looked up have no result of their own.
            let lookupFailures = context.failures.entries
            let results: [InvokeResult] = await concurrentMap(indexed, limit: throttleLimit) { job, stdin in
                let result = await job.run(settings: settings, stdin: stdin, context: context, running: running,
                                           reconnecting: reconnecting)
                display.targetFinished(failed: result.exitCode != 0)
                return result
            }
            display.finish()
            await context.pool.closeAll()
            if json { Terminal.shared.out(InvokeResult.json(results, failures: lookupFailures)) }
            // 0 if all succeeded, else the first non-zero status in session order.
            if let failed = results.first(where: { $0.exitCode != 0 }) {
                throw ExitCode(failed.exitCode)
            }
            try context.failures.exitIfFailed()
        }
    }

    /// Piped or redirected stdin is forwarded; a terminal is not (it would wait forever).
    private func stdinSources(count: Int) -> [StdinSource] {
        guard isatty(0) == 0 else { return Array(repeating: .none, count: count) }
        var info = stat()
        guard fstat(0, &info) == 0 else { return Array(repeating: .none, count: count) }
        if count == 1 { return [.fileDescriptor(0)] }
        return StdinBroadcaster.streams(count: count).map { .stream($0) }
    }

    /// --in-disconnected-session: create, start, release, print the sessions.
    private func startDisconnected(context: CommandContext, script: String, arguments: [String]) async throws {
        let progress = StreamDisplay(showVerbose: false, json: json)
        defer { progress.finish() }
        progress.beginFanOut(total: selector.computers.count)
        let rows: [SessionRow?] = await concurrentMap(selector.computers) { [self] computer in
            let row = await startDisconnected(on: computer, context: context, script: script, arguments: arguments)
            progress.targetFinished(failed: row == nil)
            return row
        }
        progress.finish()
        await context.pool.closeAll()
        SessionTable.print(rows.compactMap { $0 }, json: json, failures: context.failures)
        try context.failures.exitIfFailed()
    }

    private func startDisconnected(on computer: String, context: CommandContext, script: String,
                                   arguments: [String]) async -> SessionRow? {
        do {
            let host = try await context.pool.host(computer)
            let session = try await host.createSession(name: sessionName, configuration: configuration, idleTimeout: idleTimeout,
                                                       outputBuffering: outputBuffering, bufferLimit: bufferLimit)
            _ = try await session.invoke(script, arguments: arguments)
            try await session.detach()
            let summary = try await host.release(instanceID: session.instanceID)
            let local = try context.record([summary]).first
            return SessionRow(local: local, summary: summary)
        } catch {
            context.failures.report(error, host: computer)
            return nil
        }
    }
}

struct InvokeSettings: Sendable {
    var script: String
    var arguments: [String]
    var wait: Bool
    var json: Bool
    var prefixLines: Bool
    var temporary: Bool
    /// 0: a lost connection ends the invoke (255); else seconds to keep reconnecting.
    var reconnectTimeout: Double
    /// --tty: the command runs on a terminal with this TERM and size.
    var terminal: TerminalRequest? = nil
    /// The configuration of temporary sessions (nil: the host's default, bash).
    var configuration: String? = nil
    /// How warnings, verbose, information and progress records are shown.
    var display = StreamDisplay(showVerbose: false)
}

/// The sessions with a command in flight, for Ctrl-C.
final class RunningSessions: Sendable {
    private let lock = Lock()
    nonisolated(unsafe) private var sessions: [ObjectIdentifier: RemoteSession] = [:]  // guarded by lock

    func add(_ session: RemoteSession) { lock.withLock { sessions[ObjectIdentifier(session)] = session } }
    func remove(_ session: RemoteSession) { lock.withLock { sessions[ObjectIdentifier(session)] = nil } }
    var isEmpty: Bool { lock.withLock { sessions.isEmpty } }

    func interruptAll() {
        let all = lock.withLock { Array(sessions.values) }
        for session in all {
            Task { try? await session.interrupt() }
        }
    }
}

/// One session to run the command in (or a computer to make a temporary one on).
struct InvokeJob: Sendable {
    var computerName: String
    var target: SessionTarget?

    func run(settings: InvokeSettings, stdin: StdinSource, context: CommandContext,
             running: RunningSessions, reconnecting: ReconnectingTargets) async -> InvokeResult {
        let collected = CollectedOutput()
        var result = InvokeResult(computerName: computerName, target: target)
        let output = TargetOutput(prefix: settings.prefixLines ? "[\(computerName)] " : nil)
        let label = settings.prefixLines ? computerName : nil
        defer { settings.display.commandEnded(label: label) }
        var temporarySession: RemoteSession?
        var host: RemoteHost?
        do {
            let reconnector = Reconnector(computerName: computerName, pool: context.pool,
                                          timeout: settings.reconnectTimeout, reconnecting: reconnecting)
            var current: RemoteHost
            do {
                current = try await context.pool.host(computerName)
            } catch let error as TetherClientError where error.isConnectionLost && settings.reconnectTimeout > 0 {
                // Lost while opening (the keeper's link went down under the open): nothing
                // was sent yet, so opening again can't run anything twice.
                current = try await reconnector.reopen(cause: error)
            }
            host = current
            let session: RemoteSession
            if let target {
                session = current.session(instanceID: target.instanceID, name: target.name)
            } else {
                session = try await current.createSession(configuration: settings.configuration)
                temporarySession = session
            }
            running.add(session)
            // One token for every attempt at this invoke: a retry after a connection lost
            // before `started` rejoins the command the lost request started, or starts it.
            let token = RemoteSession.newInvokeToken()
            let invocation: Invocation
            do {
                invocation = try await StallNotice.around(current, instanceID: session.instanceID, name: session.name,
                                                          waitingFor: "to start the command") {
                    try await session.invoke(settings.script, arguments: settings.arguments,
                                             stdin: stdin, wait: settings.wait, token: token, terminal: settings.terminal)
                }
            } catch let error as TetherClientError where error.isConnectionLost && settings.reconnectTimeout > 0 {
                running.remove(session)
                let (instanceID, name) = (session.instanceID, session.name)
                let (script, arguments, wait) = (settings.script, settings.arguments, settings.wait)
                let (retried, newHost) = try await reconnector.reinvoke(lost: current, cause: error, instanceID: instanceID) { host in
                    let again = host.session(instanceID: instanceID, name: name)
                    running.add(again)
                    do {
                        return try await StallNotice.around(host, instanceID: instanceID, name: name,
                                                            waitingFor: "to start the command") {
                            try await again.invoke(script, arguments: arguments, stdin: stdin, wait: wait, token: token)
                        }
                    } catch {
                        running.remove(again)
                        throw error
                    }
                }
                current = newHost
                host = newHost
                invocation = retried
            } catch {
                running.remove(session)
                throw error
            }
            let resizes = settings.terminal == nil ? nil : TerminalMode.watchResizes { size in
                Task { try? await session.resize(size) }
            }
            defer { resizes?.cancel() }
            var followed = FollowedOutput.invocation(invocation)
            var stdinCut = false
            while true {
                do {
                    let sequence = followed.output
                    for try await chunk in sequence {
                        // Acknowledged only once written: a failed write leaves the loop
                        // before the next chunk is asked for.
                        try collected.take(chunk, json: settings.json, output: output, from: sequence,
                                           computerName: computerName, display: settings.display, label: label)
                    }
                    try output.finish()
                    running.remove(followed.session)
                    result.exitStatus = try await Self.exitStatus(of: followed, computerName: computerName)
                    result.exitCode = result.exitStatus ?? 0
                    break
                } catch let error as TetherClientError where error.isConnectionLost {
                    // The link went, the command didn't: reconnect and pick it up where
                    // this process stopped (every byte once), unless told not to.
                    try output.finish()
                    running.remove(followed.session)
                    guard settings.reconnectTimeout > 0 else {
                        throw Reconnector.notResumed(error, computerName: computerName)
                    }
                    let (reception, newHost) = try await reconnector.resume(followed.resumePoint, lost: current, cause: error)
                    stdinCut = stdinCut || reception.stdinCut
                    current = newHost
                    host = newHost
                    followed = .reception(reception)
                    running.add(reception.session)
                }
            }
            if stdinCut {
                // Its status says nothing about whether it had its whole input.
                throw TetherClientError(.connectionLost, host: computerName,
                    "the command exited with \(result.exitCode), but its stdin was cut by the lost connection: it may have read an incomplete input")
            }
        } catch let error as OutputWriteError {
            // The reader is gone (or the disk full): stop here, what was not written
            // stays on the host. A temporary session is removed first, as ssh's remote
            // command would end with the connection.
            if let temporarySession, let host { try? await host.remove(instanceID: temporarySession.instanceID) }
            Terminal.shared.leave(after: error)
        } catch {
            output.finishOrLeave()
            result.exitCode = context.failures.report(error, host: computerName, session: target?.local)
            result.error = error
        }
        result.stdout = collected.stdout
        result.stderr = collected.stderr
        result.droppedBytes = collected.droppedBytes
        result.records = collected.records
        if let temporarySession, let host {
            do {
                try await host.remove(instanceID: temporarySession.instanceID)
            } catch {
                context.failures.report(error, host: computerName)
            }
        }
        return result
    }

    /// The command's status; after a resume, from the reception that followed it.
    private static func exitStatus(of followed: FollowedOutput, computerName: String) async throws -> Int32 {
        switch followed {
        case .invocation(let invocation):
            return try await invocation.exitStatus
        case .reception(let reception):
            if let status = try await reception.exitStatus { return status }
            if let ended = try await reception.sessionEnded {
                throw TetherClientError(.remote(.sessionBroken), host: computerName, ended)
            }
            throw TetherClientError(.remote(.notFound), host: computerName,
                "the command ended while the connection was down, and its end was received by another client: its exit status is unknown")
        }
    }
}

/// One target's output: printed as it comes, or kept for --json.
final class CollectedOutput: @unchecked Sendable {
    // @unchecked: used by one task at a time (the target's).
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    var droppedBytes: UInt64 = 0
    /// --json: every chunk in order.
    var records: [OutputChunk] = []

    func take(_ chunk: OutputChunk, json: Bool, output: TargetOutput, from sequence: OutputSequence,
              computerName: String, display: StreamDisplay, label: String?) throws(OutputWriteError) {
        if json { records.append(chunk) }
        switch chunk {
        case .stdout(let bytes):
            if json { stdout += bytes } else { try output.stdout(bytes, from: sequence) }
        case .stderr(let bytes):
            if json { stderr += bytes } else { try output.stderr(bytes, from: sequence) }
        case .stream(let record):
            if !json { try display.show(record, label: label, output: output, from: sequence) }
        case .dropped(let bytes, let records):
            droppedBytes += bytes
            if !json {
                try output.finish()
                Terminal.shared.err("tether: \(computerName): \(bytes) bytes of output (\(records) records) were dropped while nobody read them\n")
            }
        }
    }
}

struct InvokeResult: Sendable {
    var computerName: String
    var target: SessionTarget?
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    var droppedBytes: UInt64 = 0
    var records: [OutputChunk] = []
    var exitStatus: Int32?
    var exitCode: Int32 = 0
    var error: (any Error)?

    /// `--json` (docs/json.md): keys in JSONSerialization's sorted order, as `PrettyJSON`
    /// expects; `error` is the error object of `FailureJSON`, then `failures` (hosts that
    /// got no result) follow as error objects.
    static func json(_ results: [InvokeResult], failures: [Failures.Entry]) -> String {
        var out = PrettyJSON(reservingCapacity: 256 + results.reduce(0) { $0 + $1.stdout.count + $1.stderr.count })
        out.beginArray()
        for r in results {
            out.element()
            out.beginObject()
            out.key("computerName"); out.string(r.computerName)
            out.key("droppedBytes"); out.integer(Int(r.droppedBytes))
            out.key("error")
            if let error = r.error { FailureJSON.error(error, exitCode: r.exitCode, to: &out) } else { out.null() }
            out.key("exitStatus")
            if let status = r.exitStatus { out.integer(Int(status)) } else { out.null() }
            out.key("id")
            if let id = r.target?.local.id { out.integer(id) } else { out.null() }
            out.key("instanceId"); out.optionalString(r.target?.instanceID)
            out.key("name"); out.optionalString(r.target?.name)
            out.key("records")
            out.beginArray()
            for chunk in r.records {
                out.element()
                chunk.writeJSON(to: &out)
            }
            out.endArray()
            out.key("stderr"); out.string(String(decoding: r.stderr, as: UTF8.self))
            out.key("stdout"); out.string(String(decoding: r.stdout, as: UTF8.self))
            out.endObject()
        }
        FailureJSON.append(failures, to: &out)
        out.endArray()
        return String(decoding: out.bytes, as: UTF8.self) + "\n"
    }
}
