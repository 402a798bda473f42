import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import TetherClient
import TetherProtocol

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a session's commands as local functions to a file to source later.",
        discussion: prose("""
        Implicit remoting kept for later, as PowerShell's Export-PSSession: writes the
        code tether import prints to FILE (mode 0600; an existing FILE is refused unless
        --force), for `source FILE` in any later shell, from your .bashrc or a script.
        The functions behave as imported ones (see tether import: arguments, stdin,
        stdout, stderr and exit status pass through; existing local names are kept unless
        --allow-clobber, checked when the file is sourced).

        On the first call of one of its functions in a shell, the file checks its
        session, as PowerShell's exported modules do: if it is gone (removed, timed out,
        the host rebooted) it is created again — same computer, same connection options
        (-p -l -i -F -o -J …), same name, configuration, idle timeout and buffering —
        and if it is disconnected it is connected again; either is said on stderr. A new
        session starts empty: functions and aliases the old one defined are not in it (a
        call of one exits 127, as in bash). A session another client holds is not taken
        (tether connect --force does that), and a Broken or Closed one is not replaced;
        the call fails, saying what to do.

        --restore-session is that check, as the file runs it: with --computer and --name
        (and the session's --configuration, --idle-timeout, --output-buffering,
        --buffer-limit, --job-limit to re-create it with), it makes sure the session
        exists and this client holds it, and prints nothing else.

        Examples:
          tether export --name deploy --command 'app*,ll' --output ~/lib/deploy.bash
          source ~/lib/deploy.bash; app-status
          tether export --name deploy --command '*' --prefix d_ --output d.bash --force
          tether Export-PSSession deploy -CommandName 'app*' -OutputModule d.bash
        """))

    @OptionGroup var arguments: ImportArguments

    @Option(help: ArgumentHelp("The file to write.", valueName: "FILE"))
    var output: String?

    @Flag(help: "Replace FILE if it exists.")
    var force = false

    @Flag(name: .customLong("restore-session"), help: "What an exported file runs first: re-create the session (--computer, --name) if it is gone, connect it if it is disconnected.")
    var restoreSession = false

    @Option(help: ArgumentHelp("With --restore-session: the configuration to re-create the session with.", valueName: "NAME"))
    var configuration: String?

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("With --restore-session: its idle timeout.", valueName: "SEC"))
    var idleTimeout: Double?

    @Option(name: .customLong("output-buffering"), help: "With --restore-session: its buffering mode (block or drop).")
    var outputBuffering: OutputBuffering?

    @Option(name: .customLong("buffer-limit"), help: ArgumentHelp("With --restore-session: its buffer limit.", valueName: "BYTES"))
    var bufferLimit: Int?

    @Option(name: .customLong("job-limit"), help: ArgumentHelp("With --restore-session: its job limit.", valueName: "N"))
    var jobLimit: Int?

    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func validate() throws {
        let recreation = configuration != nil || idleTimeout != nil || outputBuffering != nil || bufferLimit != nil || jobLimit != nil
        if restoreSession {
            let selector = arguments.selector
            guard selector.computers.count == 1, selector.names.count == 1, selector.id.isEmpty, selector.instanceIDs.isEmpty else {
                throw ValidationError("--restore-session takes one --computer and one --name (the session's exact name)")
            }
            if output != nil || !arguments.command.isEmpty || !arguments.prefix.isEmpty || arguments.allowClobber || force {
                throw ValidationError("--restore-session only checks the session: not with --output, --command, --prefix, --allow-clobber or --force")
            }
            if let idleTimeout, !(idleTimeout > 0) { throw ValidationError("--idle-timeout must be a positive number of seconds") }
            if let bufferLimit, let problem = BufferLimit.problem(bufferLimit) { throw ValidationError("--buffer-limit: \(problem)") }
            return
        }
        if recreation {
            throw ValidationError("--configuration, --idle-timeout, --output-buffering, --buffer-limit and --job-limit go with --restore-session; export takes them from the session")
        }
        try arguments.validateForListing()
        guard let output, !output.isEmpty else {
            throw ValidationError("give the file to write with --output FILE (or use tether import to evaluate the code now)")
        }
    }

    func run() async throws {
        try await reportingErrors {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: arguments.selector),
                                                        connection: connection)
            }
            let context = try CommandContext(connection: connection)
            if restoreSession {
                try await restore(context: context)
                await context.pool.closeAll()
                return
            }
            let plan = try await arguments.plan(context: context, restoresSession: true, verb: "export")
            await context.pool.closeAll()
            try Self.write(ImplicitRemoting.code(plan), to: output!, replacing: force)
            try context.failures.exitIfFailed()
        }
    }

    /// Writes `text` to `path` whole or not at all: a temporary file beside it, then
    /// link(2) (refuses an existing file, atomically) or, with `replacing`, rename(2).
    static func write(_ text: String, to path: String, replacing: Bool) throws {
        let temporary = path + ".tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw TetherClientError(.localState, "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        var offset = 0
        var failure: Int32 = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failure = n < 0 ? errno : ENOSPC; break }
            offset += n
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        defer { unlink(temporary) }
        if failure != 0 {
            throw TetherClientError(.localState, "cannot write \(path): \(String(cString: strerror(failure)))")
        }
        if replacing {
            guard rename(temporary, path) == 0 else {
                throw TetherClientError(.localState, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
        } else if link(temporary, path) != 0 {
            if errno == EEXIST { throw TetherClientError(.usage, "\(path) exists; --force replaces it") }
            throw TetherClientError(.localState, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// --restore-session: the session named exists and this client holds it, re-created
    /// or reconnected if needed (said on stderr).
    private func restore(context: CommandContext) async throws {
        let computer = arguments.selector.computers[0]
        let pattern = arguments.selector.names[0]
        let host = try await context.pool.host(computer)
        let found = try await host.sessions(filter: SessionFilter(name: pattern)).filter { wildcardMatch(pattern, $0.name) }
        guard let summary = found.first else {
            let name = pattern.replacing("\\\\", with: "\\")
            let session = try await host.createSession(
                name: name, configuration: configuration, idleTimeout: idleTimeout,
                outputBuffering: outputBuffering, bufferLimit: bufferLimit, jobLimit: jobLimit)
            if let summary = session.summary { try context.record([summary]) }
            Terminal.shared.err("tether: \(computer): session \(name) was gone: created it again (same computer, connection options and name; what the old session defined is not in the new one)\n")
            return
        }
        switch summary.state {
        case .opened:
            try context.record([summary])
        case .disconnected:
            if let holder = summary.heldElsewhere {
                throw TetherClientError(.remote(.heldElsewhere), host: computer,
                    "session \(summary.name) is held by client \(holder.clientHost) (since \(SessionTable.formatTime(holder.since))); tether connect --computer \(computer) --name \(summary.name) --force takes it over")
            }
            let claimed = try await host.claim(instanceID: summary.instanceID)
            try context.record([claimed])
            Terminal.shared.err("tether: \(computer): session \(summary.name) was disconnected: connected it again\n")
        case .closed, .broken, .unknown:
            let why = summary.info.reason.map { " (\($0))" } ?? ""
            throw TetherClientError(.remote(.sessionBroken), host: computer,
                "session \(summary.name) is \(summary.state.rawValue)\(why); tether receive --computer \(computer) --name \(summary.name) shows what it left, tether remove removes it, and the next call creates it again")
        }
    }
}
