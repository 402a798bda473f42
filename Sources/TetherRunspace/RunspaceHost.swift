import Glibc
import CTetherPosix
import TetherIO
import TetherProtocol

/// The process that owns one session's interpreter, started detached by the registry as
/// `tether-subsystem runspace …`. It lives until the registry removes the session (or it
/// gets SIGTERM); a closed or broken session stays so its unread output can be received.
public enum RunspaceHost {
    public static func run(_ options: RunspaceOptions) -> Never {
        let ready = ReadyLine(fd: options.readyFD)
        // Nothing of a login may hang us up; a vanished reader is an EPIPE, not a death.
        Signals.ignore(SIGHUP)
        Signals.ignore(SIGPIPE)
        InheritedDescriptors.ensureStandardOpen()
        InheritedDescriptors.markInheritedCloseOnExec()  // nothing of ours leaks into bash
        // Background jobs orphaned inside the session become our children, not init's:
        // we reap them (no zombies in bash's group) and see the group empty when it is.
        _ = tether_set_child_subreaper()

        if let problem = problem(with: options) { ready.fail(problem) }
        let home = Environment.get("HOME") ?? Environment.homeDirectoryOfCurrentUser()
        if chdir(home) != 0 { _ = chdir("/") }  // bash starts in $HOME, as after an ssh login

        let session: Session
        let reactor: Reactor
        let signals: SignalPipe
        do {
            reactor = try Reactor()
            try SecureDirectory.prepare(options.paths.sessionsDirectory)
            let workDirectory = try WorkDirectory(path: options.paths.runspaceWorkDirectory(options.instanceID))
            session = Session(options: options, reactor: reactor, workDirectory: workDirectory)
            // Before bash exists, so its SIGCHLD can't be missed.
            signals = try SignalPipe(reactor: reactor, signals: [SIGCHLD, SIGTERM])
            signals.onSignal = { signal in
                switch signal {
                case SIGCHLD: session.reapChildren()
                case SIGTERM: session.shutDown(reason: "terminated")
                default: break
                }
            }
            try session.listen()
            do {
                try session.startInterpreter(executable: try findBash())
            } catch {
                session.listener?.close()
                workDirectory.removeAll()
                throw error
            }
        } catch {
            ready.fail("\(error)")
        }
        session.onReady = { ready.succeed() }
        session.onStartFailure = { message in
            session.listener?.close()
            session.workDirectory.removeAll()
            ready.fail(message)
        }
        withExtendedLifetime(signals) {
            reactor.run()
        }
        exit(0)
    }

    /// What is wrong with the options, if anything (the registry shows it to the client).
    static func problem(with options: RunspaceOptions) -> String? {
        guard RunspaceConfigurations.known.contains(options.configuration) else {
            return "no configuration named \(options.configuration) on this host (available: \(RunspaceConfigurations.known.joined(separator: ", ")))"
        }
        let id = options.instanceID
        let allowed = id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == 0x2d || byte == 0x5f || byte == 0x2e
        }
        guard !id.isEmpty, id.utf8.count <= 64, allowed, !id.hasPrefix(".") else {
            return "invalid instance id \"\(id)\": expected a UUID (letters, digits, '-', '_', '.'; at most 64)"
        }
        guard options.bufferLimit > 0 else {
            return "the buffer limit must be a positive number of bytes, not \(options.bufferLimit)"
        }
        return nil
    }

    /// bash from PATH, else /bin/bash.
    static func findBash() throws -> String {
        if let found = Spawn.findExecutable("bash") ?? Spawn.findExecutable("/bin/bash") { return found }
        throw TetherIOError("bash was not found (searched PATH=\(Environment.get("PATH") ?? "") and /bin/bash)")
    }
}
