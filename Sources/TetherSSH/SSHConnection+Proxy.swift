import CTetherPosix
import Glibc
import TetherIO

/// ProxyCommand and ProxyJump: the SSH stream runs over a child process's stdin and stdout
/// — one end of a socketpair — instead of a TCP connection, as with OpenSSH.
extension SSHConnection {
    func startProxy(_ argv: [String]) {
        do {
            let (process, fd) = try ProxyProcess.start(argv, reactor: reactor)
            proxy = process
            socket = fd
        } catch {
            fail(error.kind, error.message)
            return
        }
        currentAddress = "proxy"
        enter(.connecting)
        beginHandshake()
    }

    /// Says what the proxy has to do with a failed connection: that it ended (and what it
    /// printed) — then that is the error — or that the connection went through it.
    func explainThroughProxy(_ error: inout SSHError) {
        guard let proxy, [.disconnected, .libssh2, .timeout].contains(error.kind) else { return }
        if let ended = proxy.endedStatus() {
            let how = (ended.hasPrefix("killed") ? "was " : "") + ended
            let when = phase == .ready ? "" : " before the connection was up"
            error = SSHError(phase == .ready ? error.kind : .unreachable, host: error.host,
                             "the proxy command \(proxy.display) \(how)\(when)" + proxy.saidNote)
        } else {
            error.message += "; through the proxy command \(proxy.display)" + proxy.saidNote
        }
    }

    /// The connection is done with the proxy: SIGHUP (what ssh sends its proxy), and reaped
    /// by the loop when it exits.
    func releaseProxy() {
        proxy?.hangUpAndReap()
        proxy = nil
    }
}

/// A running ProxyCommand/ProxyJump child: its pid and the tail of its stderr (kept for
/// messages; ssh's prompts can't be answered through the keeper anyway). Loop-confined.
final class ProxyProcess {
    let display: String
    private let reactor: Reactor
    private var pid: pid_t?
    private var stderrFD: Int32
    private var stderrRegistration: Registration?
    private var stderrTail = ByteTail(limit: ProxyProcess.stderrTailBytes)

    /// How long a proxy has to exit after SIGHUP before SIGKILL.
    static let grace: Double = 2
    static let stderrTailBytes = 2048

    private init(display: String, reactor: Reactor, pid: pid_t, stderrFD: Int32) {
        self.display = display
        self.reactor = reactor
        self.pid = pid
        self.stderrFD = stderrFD
        stderrRegistration = reactor.register(fd: stderrFD, interest: .readable) { [weak self] _ in
            self?.readStderr()
        }
    }

    /// Spawns `argv` with one end of a socketpair as its stdin and stdout; returns it and
    /// our end (non-blocking).
    static func start(_ argv: [String], reactor: Reactor) throws(SSHError) -> (ProxyProcess, Int32) {
        let display = describe(argv)
        func failure(_ what: String) -> SSHError {
            SSHError(.configuration, host: "", "cannot start the proxy command \(display): \(what)")
        }
        guard let executable = Spawn.findExecutable(argv[0]) else { throw failure("\(argv[0]) not found in PATH") }
        var pair: [Int32] = [0, 0], errors: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, tether_sock_stream() | tether_sock_cloexec(), 0, &pair) == 0 else {
            throw failure("socketpair: \(String(cString: strerror(errno)))")
        }
        guard tether_pipe2(&errors, O_CLOEXEC) == 0 else {
            pair.forEach { Glibc.close($0) }
            throw failure("pipe: \(String(cString: strerror(errno)))")
        }
        var options = Spawn.Options()
        options.fileActions = [0: pair[1], 1: pair[1], 2: errors[1]]
        // A session of its own: Ctrl-C at the terminal is the remote command's interrupt
        // (the CLI forwards it) and must not kill the connection's carrier; and with no
        // terminal to read, a proxy that would prompt fails at once with its own message
        // instead of stopping in the background.
        options.newSession = true
        let pid: pid_t
        do {
            pid = try Spawn.spawn(path: executable, arguments: argv, options: options)
        } catch {
            (pair + errors).forEach { Glibc.close($0) }
            throw failure("\(error)")
        }
        Glibc.close(pair[1])
        Glibc.close(errors[1])
        setNonBlocking(pair[0])
        setNonBlocking(errors[0])
        return (ProxyProcess(display: display, reactor: reactor, pid: pid, stderrFD: errors[0]), pair[0])
    }

    /// A proxy that dies closes its end of the socket a moment before the kernel makes it
    /// a zombie: a failure seen on the socket waits this long for the exit to show.
    static let exitVisibleWithin: Int32 = 20  // ms

    /// "exited with status N" (or the signal) if the child has ended, else nil. Called on
    /// a failure path only: it may wait up to `exitVisibleWithin` for an exit in progress.
    func endedStatus() -> String? {
        guard let pid else { return nil }
        var status: Int32 = 0
        var reaped = waitpid(pid, &status, WNOHANG) == pid
        if !reaped {
            let pidfd = tether_pidfd_open(pid)
            if pidfd >= 0 {
                var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                if poll(&entry, 1, Self.exitVisibleWithin) == 1 { reaped = waitpid(pid, &status, WNOHANG) == pid }
                Glibc.close(pidfd)
            }
        }
        guard reaped else { return nil }
        self.pid = nil
        readStderr()
        return "\(ExitStatus(waitStatus: status))"
    }

    /// "; it said: …" with the last lines of its stderr, or nothing.
    var saidNote: String {
        let lines = stderrTail.lastLines()
        return lines.isEmpty ? "" : "; it said: " + lines
    }

    private func readStderr() {
        var buffer = [UInt8](repeating: 0, count: 1024)
        while stderrFD >= 0 {
            let n = read(stderrFD, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { closeStderr() }
                return
            }
            stderrTail.append(contentsOf: buffer[0..<n])
        }
    }

    private func closeStderr() {
        if let stderrRegistration { reactor.unregister(stderrRegistration) }
        stderrRegistration = nil
        if stderrFD >= 0 { Glibc.close(stderrFD) }
        stderrFD = -1
    }

    func hangUpAndReap() {
        closeStderr()
        guard let pid else { return }
        self.pid = nil
        kill(pid, SIGHUP)
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) != 0 { return }  // gone already
        let reactor = self.reactor
        let pidfd = tether_pidfd_open(pid)
        var registration: Registration?
        var deadline: TimerHandle?
        let finish = {
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            if let registration { reactor.unregister(registration) }
            if let deadline { reactor.cancel(deadline) }
            registration = nil
            deadline = nil
            if pidfd >= 0 { Glibc.close(pidfd) }
        }
        deadline = reactor.schedule(after: Self.grace) {
            deadline = nil
            kill(pid, SIGKILL)
            finish()
        }
        if pidfd >= 0 {
            registration = reactor.register(fd: pidfd, interest: .readable) { _ in finish() }
        }
    }

    deinit {
        // Only reached without `hangUpAndReap` if the connection object itself went away.
        if let pid { kill(pid, SIGHUP) }
        if stderrFD >= 0 { Glibc.close(stderrFD) }
    }

    static func describe(_ argv: [String]) -> String {
        let shown = argv.count == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" && argv[2].hasPrefix("exec ")
            ? String(argv[2].dropFirst(5)) : argv.joined(separator: " ")
        return "`\(shown)`"
    }
}
