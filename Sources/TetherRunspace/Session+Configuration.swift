import Glibc
import TetherConfiguration
import TetherIO
import TetherProtocol

/// What the session's configuration adds to running commands: a restricted session's
/// command lines are checked against its `Command` rules before anything runs, and with
/// `Transcript yes` every command — allowed or refused, and how it ended — goes to the
/// system log.
extension Session {
    /// What a restricted session would run for `request`, or why it runs nothing.
    func restrictedDecision(_ request: InvokeRequest) -> CommandPolicy.Decision? {
        guard configuration.kind == .restricted else { return nil }
        switch CommandLineWords.split(request.script, extra: request.arguments) {
        case .failure(let refusal): return .refused(refusal.message)
        case .success(let words): return CommandPolicy.decide(words, rules: configuration.commands)
        }
    }

    /// Refuses `request` (nil: it may go on): a restricted command line no rule allows.
    /// The refusal is transcribed; nothing runs.
    func refusal(of request: InvokeRequest, from origin: Attachment) -> ErrorBody? {
        guard case .refused(let why) = restrictedDecision(request) else { return nil }
        let message = "refused by session configuration '\(configuration.name)': \(why)"
        if let transcript {
            try? transcript.write(transcriptPrefix(origin) + "COMMAND=\(Transcript.quoted(commandText(request))) ; REFUSED: \(why)",
                                  priority: Transcript.refusedPriority, required: false)
        }
        return ErrorBody(.permissionDenied, message)
    }

    /// Gets the command ready to run: bash's script files, or the restricted program.
    /// Returns the transcript line for the command (written here: a command that can't be
    /// recorded does not run).
    func prepareCommand(_ request: InvokeRequest, id: UInt64, from origin: Attachment, stdinName: String?,
                        terminal: CommandTerminal? = nil) throws -> String? {
        var bashLine: String?
        if let restricted = interpreter as? RestrictedInterpreter {
            if terminal != nil {
                throw TetherIOError("a restricted session runs its commands without a terminal (no --tty)")
            }
            guard case .allowed(let rule, let arguments) = restrictedDecision(request) else {
                throw TetherIOError("the command line is no longer allowed")  // checked in invoke
            }
            restricted.prepared = RestrictedInterpreter.PreparedCommand(
                path: rule.path, arguments: arguments, stdinPath: stdinName.map { workDirectory.path + "/" + $0 })
        } else {
            bashLine = try workDirectory.prepare(script: request.script, arguments: request.arguments,
                                                 stdinName: stdinName, terminal: terminal.map { ($0.slavePath, $0.term) })
        }
        // Set only once nothing can fail any more: a job's fork after a failed command must
        // find no plain line waiting (it sources its own driver file).
        guard let transcript else {
            (interpreter as? BashInterpreter)?.preparedLine = bashLine
            return nil
        }
        let line = transcriptPrefix(origin) + "COMMAND#\(id)=\(Transcript.quoted(commandText(request)))"
        var rule = ""
        if case .allowed(let allowing, _)? = restrictedDecision(request) { rule = " (\(allowing.location))" }
        do {
            try transcript.write(line + " ; ALLOWED\(rule)", priority: Transcript.allowedPriority, required: true)
        } catch {
            throw TetherIOError("Transcript yes, but the system log can't be written (\(error)): the command was not run")
        }
        (interpreter as? BashInterpreter)?.preparedLine = bashLine
        return line
    }

    /// Refuses a job (nil: it may start). A job runs in a copy of the session's shell, so
    /// a restricted session — which has none — runs no jobs; in a transcribed shell
    /// session the job's script is recorded first (and not run if it can't be).
    func refusal(ofJob request: JobStartRequest, from peer: PeerConnection) -> ErrorBody? {
        let text = ([request.script] + request.arguments.map { DriverLine.quote($0) }).joined(separator: " ")
        let prefix = transcriptPrefix(clientAddress: peer.clientAddress) + "JOB=\(Transcript.quoted(text))"
        if configuration.kind == .restricted {
            let why = "jobs run in a copy of the session's shell, and a restricted session has none"
            try? transcript?.write(prefix + " ; REFUSED: \(why)", priority: Transcript.refusedPriority, required: false)
            return ErrorBody(.permissionDenied, "refused by session configuration '\(configuration.name)': \(why)")
        }
        do {
            try transcript?.write(prefix + " ; ALLOWED", priority: Transcript.allowedPriority, required: true)
        } catch {
            return ErrorBody(.unavailable, "Transcript yes, but the system log can't be written (\(error)): the job was not started")
        }
        return nil
    }

    /// The end of a transcribed command.
    func transcribeEnd(_ command: RunningCommand, status: Int32) {
        guard let line = command.transcriptLine, let transcript else { return }
        try? transcript.write(line + " ; EXIT=\(status)", priority: Transcript.allowedPriority, required: false)
    }

    /// sudo's layout: `USER : KEY=value ; KEY=value ; …`.
    private func transcriptPrefix(_ origin: Attachment) -> String {
        transcriptPrefix(clientAddress: origin.peer.clientAddress)
    }

    private func transcriptPrefix(clientAddress: String?) -> String {
        let client = clientAddress ?? "unknown (not via sshd)"
        return "\(Environment.userName()) : CLIENT=\(client) ; CONFIGURATION=\(configuration.name) ; "
            + "SESSION=\(options.name) (\(options.instanceID)) ; TIME=\(WallClock.iso8601()) ; "
    }

    private func commandText(_ request: InvokeRequest) -> String {
        ([request.script] + request.arguments.map { DriverLine.quote($0) }).joined(separator: " ")
    }
}

extension WallClock {
    /// Now, UTC, to the second: 2026-12-03T09:30:00Z.
    static func iso8601() -> String {
        var now = time(nil)
        var utc = tm()
        gmtime_r(&now, &utc)
        var buffer = [CChar](repeating: 0, count: 32)
        _ = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &utc)
        return String(cString: buffer)
    }
}
