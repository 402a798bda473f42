import Glibc
import CTetherPosix
import TetherIO
import TetherProtocol

/// A restricted session's "interpreter": no shell. Each allowed command line is one
/// posix_spawn of the program its `Command` rule names (execve: no shell, no PATH search),
/// with a fixed environment and working directory, in a process group of its own. Its
/// stdout and stderr are two pipes that live as long as the session, read like bash's
/// (`OutputPipe`), so output is journaled, acknowledged and resumed exactly as in a shell
/// session; its stdin is /dev/null or the command's FIFO.
///
/// A command's end is its process's end: when it is reaped, what it left in the pipes is
/// read (`OutputPipe.owed`) and then the status is reported.
final class RestrictedInterpreter: Interpreter {
    /// What `runPreparedCommand` runs next (set by the session when it prepares a command).
    struct PreparedCommand {
        var path: String
        var arguments: [String]
        /// The command's stdin FIFO (the session holds it open read-write), or nil for /dev/null.
        var stdinPath: String?
    }

    private let reactor: Reactor
    private let environment: [String]
    private let workingDirectory: String
    private let stdout: OutputPipe
    private let stderr: OutputPipe
    /// Our copies of the pipes' write ends: every command gets them as fds 1 and 2.
    private let stdoutWrite: Int32
    private let stderrWrite: Int32

    private(set) var pid: pid_t = -1
    /// The process group of the last command (its leader's pid), while any of it may live.
    private var group: pid_t = -1
    private enum Phase: Equatable { case idle, running, finishing(ExitStatus), exited }
    private var phase = Phase.idle
    private(set) var becameReady = false
    private var terminationRequested = false
    private var killTimer: TimerHandle?
    var prepared: PreparedCommand?

    var onReady: () -> Void = {}
    var onOutput: (Record.Kind, [UInt8]) -> Void = { _, _ in }
    var onCommandStarted: () -> Void = {}
    var onCommandFinished: (Int32) -> Void = { _ in }
    var onExit: (ExitStatus) -> Void = { _ in }
    var onGroupKilled: () -> Void = {}
    var mayReadOutput: () -> Bool = { true } {
        didSet {
            stdout.mayRead = mayReadOutput
            stderr.mayRead = mayReadOutput
        }
    }

    /// The fixed PATH a restricted command sees (rules name absolute paths; this is only
    /// for what the allowed program itself runs).
    static let fixedPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    init(reactor: Reactor, environment: [String], workingDirectory: String) throws {
        self.reactor = reactor
        self.environment = environment
        self.workingDirectory = workingDirectory
        var output: [Int32] = [0, 0]
        var errors: [Int32] = [0, 0]
        guard tether_pipe2(&output, Int32(O_CLOEXEC)) == 0 else { throw SystemError.last("pipe2 (stdout)") }
        guard tether_pipe2(&errors, Int32(O_CLOEXEC)) == 0 else {
            Glibc.close(output[0]); Glibc.close(output[1])
            throw SystemError.last("pipe2 (stderr)")
        }
        setPipeCapacity(output[1])
        setPipeCapacity(errors[1])
        stdout = OutputPipe(reactor: reactor, fd: output[0], kind: .stdout)
        stderr = OutputPipe(reactor: reactor, fd: errors[0], kind: .stderr)
        stdoutWrite = output[1]
        stderrWrite = errors[1]
        for pipe in [stdout, stderr] {
            pipe.onData = { [weak self, kind = pipe.kind] bytes in self?.onOutput(kind, bytes) }
        }
        // Nothing to start: ready as soon as the loop runs (the session wires its
        // callbacks first).
        reactor.schedule(after: 0) { [weak self] in
            guard let self else { return }
            self.becameReady = true
            self.onReady()
        }
    }

    var isIdle: Bool { phase == .idle && becameReady }

    var groupIsEmpty: Bool {
        group <= 0 || (kill(-group, 0) != 0 && errno == ESRCH)
    }

    /// Never with a terminal: `prepareCommand` refuses one for a restricted session.
    func runPreparedCommand(terminal: OutputPipe?) {
        precondition(isIdle, "one command at a time")
        guard let command = prepared else { preconditionFailure("no prepared command") }
        prepared = nil
        phase = .running
        var options = Spawn.Options()
        options.newProcessGroup = true
        options.environment = environment
        options.workingDirectory = workingDirectory
        var stdinFD: Int32 = -1
        if let path = command.stdinPath {
            // The session holds the FIFO open read-write, so this open returns at once.
            stdinFD = open(path, O_RDONLY | O_CLOEXEC)
        }
        if stdinFD >= 0 {
            options.fileActions = [0: stdinFD, 1: stdoutWrite, 2: stderrWrite]
        } else {
            options.fileActions = [1: stdoutWrite, 2: stderrWrite]
            options.devNull = [0]
        }
        defer { if stdinFD >= 0 { Glibc.close(stdinFD) } }
        do {
            pid = try Spawn.spawn(path: command.path, arguments: [command.path] + command.arguments, options: options)
            group = pid
            onCommandStarted()
        } catch {
            // As a shell reports a program it can't run: on stderr, status 126 (or 127 if
            // it is missing), and the session goes on.
            let missing = (error as? SystemError)?.errno == ENOENT
            onOutput(.stderr, Array("tether: \(command.path): \(error)\n".utf8))
            onCommandStarted()
            phase = .finishing(.exited(missing ? 127 : 126))
            reactor.schedule(after: 0) { [weak self] in self?.completeIfDrained() }
        }
    }

    func interrupt() {
        guard phase == .running, pid > 0 else { return }
        kill(-group, SIGINT)
    }

    /// Ends the running command's group (SIGTERM, SIGKILL after a grace), then reports
    /// the end of the "interpreter": a restricted session is over once terminated.
    func terminate() {
        terminationRequested = true
        if phase == .idle {
            phase = .exited
            reactor.schedule(after: 0) { [weak self] in self?.onExit(.signaled(SIGTERM)) }
        }
        guard !groupIsEmpty else { return }
        kill(-group, SIGTERM)
        kill(-group, SIGCONT)
        guard killTimer == nil else { return }
        killTimer = reactor.schedule(after: BashInterpreter.terminationGrace) { [weak self] in
            guard let self else { return }
            self.killTimer = nil
            kill(-self.group, SIGKILL)
            self.onGroupKilled()
        }
    }

    func killGroup() {
        if group > 0 { kill(-group, SIGKILL) }
    }

    func updateReading() {
        let allowed = mayReadOutput()
        stdout.setWatching(allowed)
        stderr.setWatching(allowed)
        if allowed { completeIfDrained() }
    }

    func reaped(_ status: ExitStatus) {
        guard phase == .running else { return }
        pid = -1
        phase = .finishing(status)
        stdout.noteOwed()
        stderr.noteOwed()
        completeIfDrained()
    }

    /// Reports the finished command once what it wrote before exiting has been read.
    private func completeIfDrained() {
        guard case .finishing(let status) = phase, mayReadOutput() else { return }
        guard stdout.readOwed() && stderr.readOwed() else {
            if !mayReadOutput() { stdout.setWatching(false); stderr.setWatching(false) }
            return
        }
        if terminationRequested {
            phase = .exited
            onExit(status)
        } else {
            phase = .idle
            onCommandFinished(status.shellStatus)
        }
    }
}
