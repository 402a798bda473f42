import Glibc
import TetherIO
import TetherSSH

/// The system `ssh` binary as transport: `ssh [-F cfg] [-p] [-l] [-i]… -s HOST tether`,
/// spoken to over three pipes. Selected with `TETHER_TRANSPORT=openssh`; it honours
/// everything OpenSSH does (ProxyJump, ControlMaster, hardware keys).
///
/// ssh runs in a process group of its own so the terminal's Ctrl-C reaches only us (we
/// turn it into `signal interrupt`), and with BatchMode so it never prompts: a question
/// it cannot ask is a failure with a message, never a hang.
final class OpenSSHTransport: ByteTransport {
    private let reactor: Reactor
    private let destination: String
    private let options: ConnectionOptions
    /// Run ssh as a ControlMaster of our own (see `arguments`).
    private let shareConnection: Bool

    private var pid: pid_t = 0
    private var stdinFD: Int32 = -1
    private var stdoutFD: Int32 = -1
    private var stderrFD: Int32 = -1
    private var stdoutRegistration: Registration?
    private var stderrRegistration: Registration?
    private var stdinRegistration: Registration?
    private var queue = WriteQueue()
    private var eofRequested = false
    private var readingPaused = false
    private var stderrTail = ByteTail(limit: 8192)
    private var onData: (UnsafeRawBufferPointer) -> Void = { _ in }
    private var onClose: ((TetherClientError?) -> Void)?
    private var finished = false
    private var readBuffer = [UInt8](repeating: 0, count: 256 * 1024)
    private var wasBackedUp = false

    var onDrained: (() -> Void)?
    var pendingWriteBytes: Int { queue.pendingBytes }
    /// ssh applies the config's ServerAliveInterval itself; the client's own default
    /// check still notices a link that went silent.
    var liveness: LivenessWatch.Settings? { .standard }

    static let highWatermark = 4 << 20
    static let lowWatermark = 1 << 20

    init(reactor: Reactor, destination: String, options: ConnectionOptions, shareConnection: Bool = false) {
        self.reactor = reactor
        self.destination = destination
        self.options = options
        self.shareConnection = shareConnection
    }

    /// The ssh command line (argv[0] included). `-o` options come first: ssh takes the
    /// first value of a keyword, and the user's own `-o` must win over ours.
    static func arguments(destination: String, options: ConnectionOptions, shareConnection: Bool = false) -> [String] {
        var args = ["ssh"]
        for option in options.sshOptions { args += ["-o", option] }
        args += ["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
        if shareConnection {
            // What the keeper does for libssh2: one warm connection per destination that
            // later commands share, its socket in the client's 0700 runtime directory.
            let persist = Environment.get("TETHER_KEEPER_PERSIST").flatMap(Int.init) ?? 600
            args += ["-o", "ControlMaster=auto", "-o", "ControlPath=\(KeeperPaths.runtimeDirectory)/ssh-%C",
                     "-o", "ControlPersist=\(persist)"]
        }
        if let jump = options.jumpHosts { args += ["-J", jump] }
        if let file = options.effectiveConfigFile { args += ["-F", file] }
        if let port = options.port { args += ["-p", String(port)] }
        if let user = options.user { args += ["-l", user] }
        for identity in options.identityFiles { args += ["-i", identity] }
        if let timeout = options.connectTimeout {
            args += ["-o", "ConnectTimeout=\(max(1, Int(timeout.rounded(.up))))"]
        }
        if let policy = options.strictHostKeyChecking {
            args += ["-o", "StrictHostKeyChecking=\(policy.rawValue)"]
        }
        args += ["-s", "--", destination, options.effectiveSubsystem]
        return args
    }

    func start(onReady: @escaping () -> Void, onData: @escaping (UnsafeRawBufferPointer) -> Void,
               onClose: @escaping (TetherClientError?) -> Void) {
        self.onData = onData
        self.onClose = onClose
        do {
            try spawnSSH()
        } catch {
            fail(TetherClientError(.connection, host: destination, "cannot run ssh: \(error)"))
            return
        }
        stdoutRegistration = reactor.register(fd: stdoutFD, interest: .readable) { [weak self] _ in
            self?.readStdout()
        }
        stderrRegistration = reactor.register(fd: stderrFD, interest: .readable) { [weak self] _ in
            self?.readStderr()
        }
        // ssh buffers what we write until the subsystem runs: bytes may flow at once.
        onReady()
    }

    private func spawnSSH() throws {
        guard let path = Spawn.findExecutable("ssh") else {
            throw TetherIOError("ssh not found in PATH")
        }
        let input = try Self.makePipe()
        let output = try Self.makePipe()
        let errors = try Self.makePipe()
        var spawnOptions = Spawn.Options()
        spawnOptions.fileActions = [0: input.read, 1: output.write, 2: errors.write]
        spawnOptions.newProcessGroup = true
        do {
            if shareConnection { try? SecureDirectory.prepare(KeeperPaths.runtimeDirectory) }
            let arguments = Self.arguments(destination: destination, options: options, shareConnection: shareConnection)
            if options.verbosity > 0 {
                SSHNotice.printToStandardError("\(destination): running \(arguments.joined(separator: " "))")
            }
            pid = try Spawn.spawn(path: path, arguments: arguments, options: spawnOptions)
        } catch {
            for fd in [input.read, input.write, output.read, output.write, errors.read, errors.write] { Glibc.close(fd) }
            throw error
        }
        Glibc.close(input.read)
        Glibc.close(output.write)
        Glibc.close(errors.write)
        stdinFD = input.write
        stdoutFD = output.read
        stderrFD = errors.read
        setNonBlocking(stdinFD)
        setNonBlocking(stdoutFD)
        setNonBlocking(stderrFD)
    }

    // MARK: Writing

    func write(_ bytes: [UInt8]) {
        guard !finished, !eofRequested else { return }
        queue.append(bytes)
        if queue.pendingBytes > Self.highWatermark { wasBackedUp = true }
        if stdinRegistration == nil { flush() }
    }

    private func flush() {
        guard stdinFD >= 0 else { return }
        switch queue.flush(to: stdinFD, name: "ssh") {
        case .flushed:
            if let registration = stdinRegistration {
                reactor.unregister(registration)
                stdinRegistration = nil
            }
            if eofRequested { closeStdin() }
        case .wouldBlock:
            if stdinRegistration == nil {
                stdinRegistration = reactor.register(fd: stdinFD, interest: .writable) { [weak self] readiness in
                    guard let self else { return }
                    if readiness.contains(.error) && !readiness.contains(.writable) {
                        self.stdinBroken()
                    } else {
                        self.flush()
                    }
                }
            }
        case .failed:
            // ssh closed its stdin: it is exiting; its stderr and exit status say why.
            stdinBroken()
            return
        }
        if wasBackedUp && queue.pendingBytes <= Self.lowWatermark {
            wasBackedUp = false
            onDrained?()
        }
    }

    private func stdinBroken() {
        queue.removeAll()
        closeStdin()
    }

    private func closeStdin() {
        if let registration = stdinRegistration {
            reactor.unregister(registration)
            stdinRegistration = nil
        }
        if stdinFD >= 0 {
            Glibc.close(stdinFD)
            stdinFD = -1
        }
    }

    func sendEOF() {
        eofRequested = true
        if queue.isEmpty { closeStdin() }
    }

    // MARK: Reading

    func pauseReading() {
        readingPaused = true
        if let registration = stdoutRegistration { reactor.update(registration, interest: .none) }
    }

    func resumeReading() {
        readingPaused = false
        if let registration = stdoutRegistration { reactor.update(registration, interest: .readable) }
    }

    private func readStdout() {
        for _ in 0..<4 {
            guard !finished, stdoutFD >= 0, !readingPaused else { return }
            let n = readBuffer.withUnsafeMutableBytes { Glibc.read(stdoutFD, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return }
                closeStdout()
                return
            }
            if n == 0 {
                closeStdout()
                return
            }
            readBuffer.withUnsafeBytes { onData(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            if n < readBuffer.count { return }
        }
    }

    private func readStderr() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while stderrFD >= 0 {
            let n = Glibc.read(stderrFD, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            if n <= 0 {
                if let registration = stderrRegistration { reactor.unregister(registration) }
                stderrRegistration = nil
                Glibc.close(stderrFD)
                stderrFD = -1
                finishIfDone()
                return
            }
            // Only the tail matters: it holds ssh's reason for failing.
            stderrTail.append(contentsOf: buffer[0..<n])
        }
    }

    private func closeStdout() {
        if let registration = stdoutRegistration { reactor.unregister(registration) }
        stdoutRegistration = nil
        if stdoutFD >= 0 { Glibc.close(stdoutFD) }
        stdoutFD = -1
        finishIfDone()
    }

    /// Both output pipes are closed once ssh has exited (or is about to): reap it.
    private func finishIfDone() {
        guard stdoutFD < 0, stderrFD < 0, !finished else { return }
        let status = reap()
        let error: TetherClientError?
        if case .exited(0) = status {
            error = nil
        } else {
            error = TetherClientError(.connection, host: destination, Self.explain(status: status, stderr: stderrTail.bytes))
        }
        fail(error)
    }

    private func reap() -> ExitStatus? {
        guard pid > 0 else { return nil }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { pid = 0; return nil }
        }
        pid = 0
        return ExitStatus(waitStatus: status)
    }

    private func fail(_ error: TetherClientError?) {
        guard !finished else { return }
        teardown()
        let callback = onClose
        onClose = nil
        callback?(error)
    }

    func close() {
        onClose = nil
        teardown()
    }

    private func teardown() {
        finished = true
        queue.removeAll()
        closeStdin()
        if let registration = stdoutRegistration { reactor.unregister(registration) }
        if let registration = stderrRegistration { reactor.unregister(registration) }
        stdoutRegistration = nil
        stderrRegistration = nil
        if stdoutFD >= 0 { Glibc.close(stdoutFD) }
        if stderrFD >= 0 { Glibc.close(stderrFD) }
        stdoutFD = -1
        stderrFD = -1
        if pid > 0 {
            Glibc.kill(pid, SIGTERM)
            _ = reap()
        }
    }

    // MARK: Helpers

    /// ssh's own last words are the best explanation ("Connection refused", "Host key
    /// verification failed.", "subsystem request failed on channel 0").
    static func explain(status: ExitStatus?, stderr: [UInt8]) -> String {
        let lines = String(decoding: stderr, as: UTF8.self)
            .split(whereSeparator: \.isNewline)
            .map { $0.trimmingWhitespace() }
            .filter { !$0.isEmpty && !$0.hasPrefix("Warning: Permanently added") }
        if let reason = lines.last(where: { $0.hasPrefix("ssh:") || $0.contains("denied") || $0.contains("failed") || $0.contains("refused") })
            ?? lines.last {
            if reason.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") || lines.contains(where: { $0.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") }) {
                return "host key changed (known_hosts mismatch): \(reason)"
            }
            return reason
        }
        switch status {
        case .some(let s): return "ssh \(s)"
        case .none: return "ssh ended unexpectedly"
        }
    }

    static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError.last("pipe") }
        setCloseOnExec(fds[0])
        setCloseOnExec(fds[1])
        return (fds[0], fds[1])
    }
}
