import Glibc
import CTetherPosix
import TetherIO
import TetherProtocol

/// One persistent `bash --noprofile --norc`, in a session and process group of its own, driven through
/// pipes: stdin carries driver lines (`DriverLine`), fds 1 and 2 are the output pipes, and
/// fd 3 carries `s` when a command starts and its status line when it ends.
///
/// Order guarantee: a command's output is in the pipes before its status line is written,
/// so on a status line (or bash's exit) the bytes then in the pipes are read first
/// (`OutputPipe.owed`), and only then is the end reported.
final class BashInterpreter {
    enum Phase: Equatable {
        /// Spawned; waiting for the startup line's status.
        case starting
        case idle
        case running
        /// The status arrived; reading what the command wrote before reporting it.
        case finishing(status: Int32)
        /// Reaped; nothing more will happen.
        case exited
    }

    private let reactor: Reactor
    let pid: pid_t
    private(set) var phase = Phase.starting
    private let driver: PipeWriter
    private let stdout: OutputPipe
    private let stderr: OutputPipe
    /// The other streams' FIFO (`StreamPipe`): read only after stdout and stderr.
    private let streams: StreamPipe?
    private var statusFD: Int32
    private var statusRegistration: Registration?
    private var statusLine: [UInt8] = []
    /// Bash has been reaped; the end is reported once the pipes are drained.
    private var pendingExit: ExitStatus?
    private var killTimer: TimerHandle?
    private(set) var terminationRequested = false
    /// The running command's `s` marker arrived (bash is about to source it).
    private var commandStarted = false
    /// An interrupt asked for before `s`: sent when it arrives.
    private var interruptPending = false
    /// Counts commands, so a timer can tell whether "its" command is still running.
    private var commandNumber = 0
    private var interruptRepeat: TimerHandle?

    /// When an interrupted command is still running after this long, SIGINT goes out once
    /// more. A SIGINT that lands in bash's child between fork and exec is lost: the child
    /// still has bash's trap handler, which only notes it, and exec forgets the note — so
    /// `sleep 100` would run on while bash waits to run its trap. One repeat, a while
    /// later, reaches the exec'd program; a command that handles SIGINT and ends in time
    /// never sees it.
    static let interruptRepeatDelay: Double = 1
    /// The running command's terminal output (a pty master), read from its start marker on.
    private var terminal: OutputPipe?
    /// The command ended but its terminal may still hold output: until the last slave
    /// closes (EIO), or `terminalDrainGrace` passes (a background job holds the slave).
    private var terminalDrainTimer: TimerHandle?
    private var terminalDrainOver = false
    static let terminalDrainGrace: Double = 0.25

    /// Bash answered its startup line (a death before that is a failure to start).
    private(set) var becameReady = false

    /// Bash read its startup line: ready for commands.
    var onReady: () -> Void = {}
    var onOutput: (Record.Kind, [UInt8]) -> Void = { _, _ in }
    /// The running command is starting: its stdin is open.
    var onCommandStarted: () -> Void = {}
    /// The running command ended with this status, its output all delivered.
    var onCommandFinished: (Int32) -> Void = { _ in }
    /// Bash is gone (after any command it was running has been reported finished or not);
    /// the pipes are closed.
    var onExit: (ExitStatus) -> Void = { _ in }
    /// Asked before each read of output: may output be taken now?
    var mayReadOutput: () -> Bool = { true } {
        didSet {
            stdout.mayRead = mayReadOutput
            stderr.mayRead = mayReadOutput
        }
    }

    /// How long a terminated group has between SIGTERM and SIGKILL.
    static let terminationGrace: Double = 2

    /// Spawns bash with `arguments` (argv[0] included) and sends the startup line;
    /// commands name their files relative to `workDirectory`.
    init(reactor: Reactor, executable: String, arguments: [String], workDirectory: String,
         startupScript: String? = nil, streams: StreamPipe? = nil, streamCommands: String? = nil) throws {
        self.reactor = reactor
        self.streams = streams
        var opened: [Int32] = []
        func makePipe(_ what: String) throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [0, 0]
            guard tether_pipe2(&fds, Int32(O_CLOEXEC)) == 0 else {
                throw SystemError.last("pipe2 (bash \(what))")
            }
            // Keep the child's ends away from 0…9 so no dup2 in the spawn can clobber one
            // before it is copied (and none is its own target).
            let moved = fds.map { fd -> Int32 in
                guard fd < 10 else { return fd }
                let high = fcntl(fd, F_DUPFD_CLOEXEC, 10)
                if high >= 0 { Glibc.close(fd); return high }
                return fd
            }
            opened.append(contentsOf: moved)
            return (moved[0], moved[1])
        }
        let input: (read: Int32, write: Int32), output: (read: Int32, write: Int32)
        let errors: (read: Int32, write: Int32), status: (read: Int32, write: Int32)
        do {
            input = try makePipe("stdin")
            output = try makePipe("stdout")
            errors = try makePipe("stderr")
            // Room for 1 MiB: a fast writer fills it while we are busy, and each read
            // takes a whole record (fewer wake-ups per GB on both sides). Pages are
            // allocated only as data waits, so an idle session pays nothing for it.
            for pipe in [output, errors] { setPipeCapacity(pipe.write) }
            status = try makePipe("status")
        } catch {
            opened.forEach { Glibc.close($0) }
            throw error
        }
        var options = Spawn.Options()
        options.fileActions = [0: input.read, 1: output.write, 2: errors.write, 3: status.write]
        // A session of its own (and so a process group): a command with a terminal makes the
        // pty bash's controlling terminal (CommandTerminal).
        options.newSession = true
        do {
            pid = try Spawn.spawn(path: executable, arguments: arguments, options: options)
        } catch {
            opened.forEach { Glibc.close($0) }
            throw error
        }
        // The child has its copies; ours of the child's ends would keep the pipes open.
        for fd in [input.read, output.write, errors.write, status.write] { Glibc.close(fd) }

        driver = PipeWriter(reactor: reactor, fd: input.write, name: "bash's stdin")
        stdout = OutputPipe(reactor: reactor, fd: output.read, kind: .stdout)
        stderr = OutputPipe(reactor: reactor, fd: errors.read, kind: .stderr)
        statusFD = status.read
        setNonBlocking(statusFD)

        // Bash gone before reading everything we wrote: its exit is what we report.
        driver.onError = { _ in }
        for pipe in [stdout, stderr] {
            pipe.onData = { [weak self, kind = pipe.kind] bytes in self?.onOutput(kind, bytes) }
        }
        streams?.onRecord = { [weak self] record in self?.onOutput(record.kind, record.body) }
        streams?.onReadable = { [weak self] in self?.readStreams() }
        statusRegistration = reactor.register(fd: statusFD, interest: .readable) { [weak self] _ in
            self?.readStatus()
        }
        updateReading()
        let ours = "/proc/\(getpid())/fd/"
        driver.write(Array(DriverLine.startup(workDirectory: workDirectory, driverInput: ours + String(input.write),
                                              statusOutput: ours + String(statusFD),
                                              startupScript: startupScript,
                                              streams: streams.map { ($0.path, streamCommands ?? "") }).utf8))
    }

    /// The process group of bash and everything it starts (bash leads it).
    var processGroup: pid_t { pid }

    /// Bash can take a command now.
    var isIdle: Bool { phase == .idle && pendingExit == nil }

    // MARK: Commands

    /// The line that runs the next prepared command, when `WorkDirectory.prepare` chose one
    /// (`DriverLine.plainCommand`); nil: source the driver file, as jobs' forks and
    /// snapshots (which write their own) and the other commands do. Used once.
    var preparedLine: String?

    /// Sends the line for the command prepared in the work directory (its script, and its
    /// driver file unless it is plain, written). Only when `isIdle`.
    func runPreparedCommand(terminal: OutputPipe?) {
        precondition(isIdle, "one command at a time")
        let line = preparedLine ?? DriverLine.command(driverName: WorkDirectory.driverName)
        preparedLine = nil
        phase = .running
        self.terminal = terminal
        terminalDrainOver = false
        if let terminal {
            terminal.onData = { [weak self] bytes in self?.onOutput(.stdout, bytes) }
            terminal.onEnd = { [weak self] in self?.completeIfDrained() }
        }
        commandStarted = false
        interruptPending = false
        streams?.discardStaleAnswers()
        commandNumber += 1
        if let interruptRepeat { reactor.cancel(interruptRepeat) }
        interruptRepeat = nil
        driver.write(line == DriverLine.plainCommand ? DriverLine.plainCommandBytes : Array(line.utf8))
    }

    /// SIGINT to the whole group: the foreground command dies or traps it, bash's INT trap
    /// unwinds the command, background jobs (which ignore SIGINT) live on. Before the
    /// command has started it waits for `s`; after its status arrived there is nothing to
    /// interrupt (and a SIGINT could land on the next command).
    func interrupt() {
        guard phase == .running, pendingExit == nil else { return }
        if commandStarted {
            sendInterrupt()
        } else {
            interruptPending = true
        }
    }

    private func sendInterrupt() {
        kill(-processGroup, SIGINT)
        guard interruptRepeat == nil else { return }
        let number = commandNumber
        interruptRepeat = reactor.schedule(after: BashInterpreter.interruptRepeatDelay) { [weak self] in
            guard let self, self.commandNumber == number, self.phase == .running, self.pendingExit == nil else { return }
            kill(-self.processGroup, SIGINT)
        }
    }

    /// SIGTERM to the group (SIGCONT so stopped members see it), SIGKILL after a grace.
    func terminate() {
        terminationRequested = true
        // End of file on its stdin tells bash's EXIT trap this end is wanted (no re-exec).
        driver.close()
        kill(-processGroup, SIGTERM)
        kill(-processGroup, SIGCONT)
        guard killTimer == nil else { return }
        killTimer = reactor.schedule(after: BashInterpreter.terminationGrace) { [weak self] in
            guard let self else { return }
            self.killTimer = nil
            kill(-self.processGroup, SIGKILL)
            self.onGroupKilled()
        }
    }

    /// The grace ended and SIGKILL went out (shutdown waits for this or an empty group).
    var onGroupKilled: () -> Void = {}

    /// True when no process of bash's group is left.
    var groupIsEmpty: Bool {
        kill(-processGroup, 0) != 0 && errno == ESRCH
    }

    /// SIGKILL to whatever is left of the group, now.
    func killGroup() {
        kill(-processGroup, SIGKILL)
    }

    // MARK: Output

    /// Re-evaluates `mayReadOutput`: watches the pipes or stops, and finishes a pending
    /// end if the owed output can now be read. Call whenever the answer may have changed.
    func updateReading() {
        let allowed = mayReadOutput()
        stdout.setWatching(allowed)
        stderr.setWatching(allowed)
        streams?.setWatching(allowed)
        if commandStarted { terminal?.setWatching(allowed) }
        if allowed { completeIfDrained() }
    }

    /// A stream message is waiting. Its writer wrote everything now in stdout, stderr
    /// and the terminal before it (and waits for the message to be taken before writing
    /// more), so that is read first: the records keep the order the command wrote in.
    private func readStreams() {
        guard let streams else { return }
        guard mayReadOutput(), drainOutputWrittenSoFar() else {
            streams.setWatching(false)  // `updateReading` resumes it
            return
        }
        streams.readOnce()
    }

    /// Reads what stdout, stderr (and a started command's terminal) hold now. False if
    /// reading had to stop (the journal filled).
    private func drainOutputWrittenSoFar() -> Bool {
        stdout.noteOwed()
        stderr.noteOwed()
        if commandStarted { terminal?.noteOwed() }
        return stdout.readOwed() && stderr.readOwed() && (commandStarted ? terminal?.readOwed() ?? true : true)
    }

    // MARK: Status pipe

    private func readStatus() {
        // On the stack: this runs twice per command (`s`, then the status).
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { readStatus(into: $0) }
    }

    private func readStatus(into buffer: UnsafeMutableBufferPointer<UInt8>) {
        while statusFD >= 0 {
            let n = read(statusFD, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return }
                closeStatus()
                return
            }
            if n == 0 {
                // Bash exited (background jobs never hold fd 3); SIGCHLD reports how.
                closeStatus()
                return
            }
            for byte in buffer[0..<n] {
                if byte == 0x0a {
                    handleStatusLine(String(decoding: statusLine, as: UTF8.self))
                    statusLine.removeAll(keepingCapacity: true)
                } else if statusLine.count < 64 {
                    statusLine.append(byte)
                }
            }
            // A short read emptied the pipe: no read(2) just to meet EAGAIN (poll is
            // level-triggered, so anything written since wakes us again).
            if n < buffer.count { return }
        }
    }

    private func handleStatusLine(_ line: String) {
        if line == DriverLine.startedMarker {
            guard phase == .running else { return }
            commandStarted = true
            // Bash holds the slave from now on: reading the master before could meet EIO.
            terminal?.setWatching(mayReadOutput())
            onCommandStarted()
            if interruptPending {
                interruptPending = false
                sendInterrupt()
            }
            return
        }
        guard let status = Int32(line) else { return }  // only we write to fd 3
        switch phase {
        case .starting:
            phase = .idle
            becameReady = true
            onReady()
        case .running:
            phase = .finishing(status: status)
            stdout.noteOwed()
            stderr.noteOwed()
            if terminal != nil {
                terminalDrainTimer = reactor.schedule(after: BashInterpreter.terminalDrainGrace) { [weak self] in
                    self?.terminalDrainTimer = nil
                    self?.terminalDrainOver = true
                    self?.completeIfDrained()
                }
            }
            completeIfDrained()
        case .idle, .finishing, .exited:
            break
        }
    }

    private func closeStatus() {
        if let statusRegistration { reactor.unregister(statusRegistration) }
        statusRegistration = nil
        if statusFD >= 0 { Glibc.close(statusFD) }
        statusFD = -1
    }

    // MARK: Exit

    /// Bash was reaped with `status` (from the SIGCHLD handler's waitpid).
    func reaped(_ status: ExitStatus) {
        guard pendingExit == nil, phase != .exited else { return }
        // A status line written just before dying is still in the pipe: take it first.
        readStatus()
        closeStatus()
        pendingExit = status
        driver.close()
        stdout.noteOwed()
        stderr.noteOwed()
        completeIfDrained()
    }

    /// Reports a finished command and/or bash's exit once the owed output is read.
    private func completeIfDrained() {
        // With nothing owed, a full journal must not hold back the end (a tiny buffer
        // limit once hung even `true`); owed output waits for room as usual.
        guard (stdout.owed == 0 && stderr.owed == 0) || mayReadOutput() else { return }
        let drained = stdout.readOwed() && stderr.readOwed()
        guard drained else {
            // Paused mid-way (the journal filled): resumes from `updateReading`.
            if !mayReadOutput() { stdout.setWatching(false); stderr.setWatching(false) }
            return
        }
        // Stream messages the command wrote before it ended (their writers have their
        // answers, or did not wait for one) come before its end, after its output.
        if case .finishing = phase { streams?.readAvailable() } else if pendingExit != nil { streams?.readAvailable() }
        if case .finishing(let status) = phase {
            if let terminal, terminal.isOpen, !terminalDrainOver, pendingExit == nil { return }
            if let terminalDrainTimer { reactor.cancel(terminalDrainTimer) }
            terminalDrainTimer = nil
            terminal = nil
            phase = .idle
            onCommandFinished(status)
        }
        if let status = pendingExit, phase != .exited {
            phase = .exited
            // Background jobs may still hold the write ends; the session is over for them.
            stdout.close()
            stderr.close()
            streams?.close()
            onExit(status)
        }
    }
}
