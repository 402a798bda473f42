import Glibc
import CTetherPosix
import TetherConfiguration
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
        let configuration: SessionConfiguration
        switch loadConfiguration(options) {
        case .failure(let problem): ready.fail(problem.message)
        case .success(let found): configuration = found
        }
        let home = Environment.get("HOME") ?? Environment.homeDirectoryOfCurrentUser()
        if chdir(home) != 0 { _ = chdir("/") }  // bash starts in $HOME, as after an ssh login
        let workingDirectory = configuration.resolvedWorkingDirectory(home: home, user: Environment.userName())
        if let workingDirectory, chdir(workingDirectory) != 0 {
            ready.fail("WorkingDirectory \(workingDirectory) of configuration \(configuration.name): \(SystemError.last("chdir"))")
        }
        // Where restricted commands start: the WorkingDirectory, else $HOME if it exists, else /.
        let startDirectory = workingDirectory ?? currentDirectory() ?? "/"
        if configuration.kind == .shell {
            // Only bash inherits this process's environment.
            for setting in configuration.environment { setenv(setting.name, setting.value, 1) }
        }

        let session: Session
        let reactor: Reactor
        let signals: SignalPipe
        do {
            reactor = try Reactor()
            try SecureDirectory.prepare(options.paths.sessionsDirectory)
            let workDirectory = try WorkDirectory(path: options.paths.runspaceWorkDirectory(options.instanceID))
            session = Session(options: options, reactor: reactor, workDirectory: workDirectory,
                              configuration: configuration)
            // Before bash exists, so its SIGCHLD can't be missed.
            signals = try SignalPipe(reactor: reactor, signals: [SIGCHLD, SIGTERM, SIGUSR1])
            signals.onSignal = { signal in
                switch signal {
                case SIGCHLD: session.reapChildren()
                case SIGTERM: session.shutDown(reason: "terminated")
                // As tmux: SIGUSR1 makes the socket again if a cleaner removed it.
                case SIGUSR1: try? session.restoreRuntimeFiles()
                default: break
                }
            }
            try session.listen()
            do {
                switch configuration.kind {
                case .shell:
                    try session.startInterpreter(executable: try findBash(), startupScript: configuration.startupScript)
                case .restricted:
                    session.wire(try RestrictedInterpreter(
                        reactor: reactor, environment: restrictedEnvironment(configuration, home: home),
                        workingDirectory: startDirectory))
                }
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

    /// The session's configuration, read again here and checked again for this user (the
    /// registry checked it before spawning us; a runspace never trusts its argv for that).
    static func loadConfiguration(_ options: RunspaceOptions) -> Result<SessionConfiguration, ConfigurationProblem> {
        let directory = ConfigurationDirectory(path: options.paths.configurationDirectory)
        switch directory.load(options.configuration) {
        case .failure(let failure) where failure.notFound:
            let account = UnixAccount.current()
            let usable = directory.loadAll().configurations.filter {
                $0.enabled && $0.access.refusal(user: account.name, groups: account.groups, kind: $0.kind) == nil
            }.map(\.name)
            return .failure(ConfigurationProblem(message: "no configuration named \(options.configuration) on this host (available: \(usable.joined(separator: ", ")))"))
        case .failure(let failure):
            return .failure(ConfigurationProblem(message: "session configuration \(options.configuration) can't be used: \(failure.summary)"))
        case .success(let configuration):
            let account = UnixAccount.current()
            if let refusal = configuration.access.refusal(user: account.name, groups: account.groups, kind: configuration.kind) {
                return .failure(ConfigurationProblem(message: "you may not use session configuration \(configuration.name): \(refusal)"))
            }
            guard configuration.enabled else {
                return .failure(ConfigurationProblem(message: "session configuration \(configuration.name) is disabled on this host"))
            }
            return .success(configuration)
        }
    }

    struct ConfigurationProblem: Error { var message: String }

    /// All a restricted command's environment: the fixed PATH, who the user is, and the
    /// configuration's Environment lines — nothing from the client or from the login.
    static func restrictedEnvironment(_ configuration: SessionConfiguration, home: String) -> [String] {
        let user = Environment.userName()
        var environment = ["PATH=\(RestrictedInterpreter.fixedPath)", "HOME=\(home)", "USER=\(user)", "LOGNAME=\(user)"]
        for setting in configuration.environment where !setting.name.hasPrefix("LD_") && setting.name != "PATH" {
            environment.removeAll { $0.hasPrefix(setting.name + "=") }
            environment.append(setting.assignment)
        }
        return environment
    }

    static func currentDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        return String(cString: buffer)
    }

    /// bash from PATH, else /bin/bash.
    static func findBash() throws -> String {
        if let found = Spawn.findExecutable("bash") ?? Spawn.findExecutable("/bin/bash") { return found }
        throw TetherIOError("bash was not found (searched PATH=\(Environment.get("PATH") ?? "") and /bin/bash)")
    }
}
