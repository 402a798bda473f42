import Glibc
import TetherIO
import TetherProtocol
import TetherRegistry

/// Finds the user's registry, starting it if nobody answers — the way tmux's client starts
/// its server: connect; on failure take `registry.lock`, try again (another connection may
/// have just started one), and only then clear a stale socket and spawn a registry,
/// waiting for its "ok". The lock makes simultaneous first connections start exactly one.
///
/// This blocks (at most `readyTimeout`): it runs before the first answer that needs the
/// registry, and a local registry starts in milliseconds.
enum RegistryStarter {
    static let readyTimeout: Double = 10

    /// A connected, uid-checked socket to the registry.
    static func connect(paths: HostPaths, log: HostLog) throws -> Int32 {
        if let fd = try connectIfServing(paths) { return fd }

        let lockFD = open(paths.registryLock, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw SystemError.last("open \(paths.registryLock)") }
        defer { close(lockFD) }  // closing drops the flock
        while flock(lockFD, LOCK_EX) != 0 {
            guard errno == EINTR else { throw SystemError.last("flock \(paths.registryLock)") }
        }
        if let fd = try connectIfServing(paths) { return fd }

        unlink(paths.registrySocket)
        let pid = try spawnRegistry(paths: paths, log: log)
        switch pid.report {
        case .ready:
            return try UnixSocket.connect(path: paths.registrySocket)
        case .failed(let why):
            // A registry that found another one running exits without a word; that one
            // may well be serving by now.
            if let fd = try connectIfServing(paths) { return fd }
            throw TetherIOError("could not start the Tether registry: \(why) (see \(paths.logFile))")
        }
    }

    /// Connects if a registry listens; nil if the socket is missing or refuses.
    private static func connectIfServing(_ paths: HostPaths) throws -> Int32? {
        do {
            return try UnixSocket.connect(path: paths.registrySocket)
        } catch let error as SystemError where error.errno == ENOENT || error.errno == ECONNREFUSED {
            return nil
        }
    }

    private static func spawnRegistry(paths: HostPaths, log: HostLog) throws -> (pid: pid_t, report: ReadyPipe.Report) {
        let pipe = try ReadyPipe()
        var options = Spawn.Options()
        options.fileActions = [ReadyPipe.childFD: pipe.writeEnd]
        options.devNull = [0, 1, 2]
        options.newSession = true
        let arguments = [
            Spawn.currentExecutable(), "registry",
            "--ready-fd=\(ReadyPipe.childFD)",
        ] + paths.roleArguments
        let pid: pid_t
        do {
            pid = try Spawn.spawn(path: arguments[0], arguments: arguments, options: options)
        } catch {
            close(pipe.readEnd)
            close(pipe.writeEnd)
            throw error
        }
        close(pipe.writeEnd)
        defer { close(pipe.readEnd) }
        log.write("started the registry (pid \(pid))")
        guard let bytes = StartupLine.read(from: pipe.readEnd, timeout: readyTimeout) else {
            // It is ours and stuck; left alive it would hold registry.pid forever.
            kill(pid, SIGKILL)
            throw TetherIOError("the Tether registry (pid \(pid)) did not report ready within \(Int(readyTimeout))s; killed it (see \(paths.logFile))")
        }
        return (pid, ReadyPipe.interpret(bytes, role: "registry"))
    }
}
