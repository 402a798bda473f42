import Glibc
import TetherIO
import TetherProtocol

/// Starts one runspace host, detached from everything of ours (its own session, SIGHUP
/// ignored, stdio on /dev/null), and reports on the Reactor — never blocking it — when its
/// "ok" (or its error) arrives on the ready pipe.
final class RunspaceLauncher {
    /// How long a runspace may take to start its interpreter and listen.
    static let readyTimeout: Double = 30

    private let reactor: Reactor
    private let readFD: Int32
    let pid: pid_t
    private var received: [UInt8] = []
    private var registration: Registration?
    private var timer: TimerHandle?
    private var completion: ((ReadyPipe.Report) -> Void)?

    /// Spawns the runspace; `completion` runs once, on the loop.
    init(reactor: Reactor, paths: HostPaths, session: SessionInfo,
         completion: @escaping (ReadyPipe.Report) -> Void) throws {
        self.reactor = reactor
        let pipe = try ReadyPipe()
        var options = Spawn.Options()
        options.fileActions = [ReadyPipe.childFD: pipe.writeEnd]
        options.devNull = [0, 1, 2]
        options.newSession = true
        // SIGHUP stays ignored (inherited from us) so nothing of a login can hang it up.
        options.defaultSignals = [SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGCHLD]
        let arguments = [
            Spawn.currentExecutable(), "runspace",
            "--instance-id=\(session.instanceID)",
            "--name=\(session.name)",
            "--configuration=\(session.configuration)",
            "--output-buffering=\(session.outputBuffering.rawValue)",
            "--buffer-limit=\(session.bufferLimit)",
            "--idle-timeout=\(session.idleTimeout)",
            "--ready-fd=\(ReadyPipe.childFD)",
        ] + (session.jobLimit.map { ["--job-limit=\($0)"] } ?? []) + paths.roleArguments
        do {
            // The registry's own image (argv[0] only names it): a rebuilt or upgraded binary
            // on disk must not give this registry runspaces of another protocol version.
            pid = try Spawn.spawn(path: Spawn.runningImage, arguments: arguments, options: options)
        } catch {
            close(pipe.readEnd)
            close(pipe.writeEnd)
            throw error
        }
        close(pipe.writeEnd)
        readFD = pipe.readEnd
        setNonBlocking(readFD)
        self.completion = completion
        registration = reactor.register(fd: readFD, interest: .readable) { [weak self] _ in
            self?.readReport()
        }
        timer = reactor.schedule(after: RunspaceLauncher.readyTimeout) { [weak self] in
            guard let self else { return }
            // It is ours and not yet ready: nobody else can be relying on it.
            kill(self.pid, SIGKILL)
            self.finish(.failed("the runspace host did not report ready within \(Int(RunspaceLauncher.readyTimeout))s"))
        }
    }

    private func readReport() {
        var buffer = [UInt8](repeating: 0, count: 512)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { return }
                finish(.failed("reading the runspace host's ready pipe: \(SystemError.last("read"))"))
                return
            }
            if n == 0 {
                finish(ReadyPipe.interpret(received, role: "runspace host"))
                return
            }
            received.append(contentsOf: buffer[0..<n])
            if received.contains(0x0a) || received.count > 4096 {
                finish(ReadyPipe.interpret(received, role: "runspace host"))
                return
            }
        }
    }

    private func finish(_ report: ReadyPipe.Report) {
        guard let completion else { return }
        self.completion = nil
        if let registration { reactor.unregister(registration) }
        registration = nil
        if let timer { reactor.cancel(timer) }
        timer = nil
        close(readFD)
        completion(report)
    }
}
