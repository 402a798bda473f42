import Glibc
import TetherIO

/// Finds the keeper, starting it if nobody answers — the registry's (and tmux's) way:
/// connect; on failure take the lock file, try again (another CLI may have just started
/// one), and only then clear a stale socket and spawn a keeper, waiting on its ready pipe.
/// The lock makes simultaneous first CLIs start exactly one keeper.
///
/// Blocks the calling thread for at most `readyTimeout` (a keeper starts in milliseconds).
/// Every failure is thrown; the caller then connects directly instead.
enum KeeperLauncher {
    static let readyTimeout: Double = 5
    /// The file descriptor the keeper writes "ok" (or why not) on.
    static let readyFD: Int32 = 3

    private static let spawnedLock = Lock()
    nonisolated(unsafe) private static var spawned: [pid_t] = []  // guarded by spawnedLock
    /// Keepers that would not start, by socket path, and until when not to try again: a
    /// process connecting to fifty hosts pays for a broken keeper once, not fifty times.
    nonisolated(unsafe) private static var failedStarts: [String: UInt64] = [:]  // guarded by spawnedLock
    static let retryFailedStartAfter: Double = 60

    /// A connected, uid-checked socket to the keeper (blocking).
    static func connect(paths: KeeperPaths, executable: String) throws -> Int32 {
        reapExitedKeepers()
        try SecureDirectory.prepare(paths.directory)
        if let fd = try connectIfServing(paths) { return fd }

        let lockFD = open(paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw SystemError.last("open \(paths.lock)") }
        defer { close(lockFD) }  // closing drops the flock
        while flock(lockFD, LOCK_EX) != 0 {
            guard errno == EINTR else { throw SystemError.last("flock \(paths.lock)") }
        }
        if let fd = try connectIfServing(paths) { return fd }

        if let until = spawnedLock.withLock({ failedStarts[paths.socket] }), Reactor.now() < until {
            throw TetherIOError("the tether keeper failed to start moments ago")
        }
        unlink(paths.socket)
        sweepStaleKeepers(in: paths.directory)
        do {
            try spawnKeeper(paths: paths, executable: executable)
        } catch {
            let until = Reactor.now() + UInt64(retryFailedStartAfter * 1e9)
            spawnedLock.withLock { failedStarts[paths.socket] = until }
            throw error
        }
        return try UnixSocket.connect(path: paths.socket)
    }

    /// Connects if a keeper listens; nil if the socket is missing or refuses.
    static func connectIfServing(_ paths: KeeperPaths) throws -> Int32? {
        do {
            return try UnixSocket.connect(path: paths.socket)
        } catch let error as SystemError where error.errno == ENOENT || error.errno == ECONNREFUSED {
            return nil
        }
    }

    private static func spawnKeeper(paths: KeeperPaths, executable: String) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError.last("pipe") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        setCloseOnExec(readEnd)
        setCloseOnExec(writeEnd)
        defer { close(readEnd) }
        var options = Spawn.Options()
        options.fileActions = [readyFD: writeEnd]
        options.devNull = [0, 1, 2]
        // Its own session: no terminal, no job-control signals from the CLI's shell.
        options.newSession = true
        // Don't keep the CLI's working directory busy (an unmountable disk, a deleted dir).
        options.workingDirectory = "/"
        let arguments = [executable, "keeper", "--socket", paths.socket, "--ready-fd", String(readyFD)]
        let pid: pid_t
        do {
            pid = try Spawn.spawn(path: executable, arguments: arguments, options: options)
        } catch {
            close(writeEnd)
            throw error
        }
        close(writeEnd)
        spawnedLock.withLock { spawned.append(pid) }
        let answer = StartupLine.read(from: readEnd, timeout: readyTimeout)
        guard let answer else {
            kill(pid, SIGKILL)
            throw TetherIOError("the tether keeper (pid \(pid)) did not report ready within \(Int(readyTimeout)) s; killed it")
        }
        let text = String(decoding: answer.prefix { $0 != 0x0a }, as: UTF8.self)
        guard text == "ok" else {
            throw TetherIOError("the tether keeper did not start: \(text.isEmpty ? "it exited" : text) (see \(paths.log))")
        }
    }

    /// Removes what crashed keepers left in the directory (socket, lock, log: a clean
    /// exit removes its own). Only what is provably dead: nobody holds the lock (no CLI
    /// is starting that keeper) and nothing listens on the socket. Runs when a keeper is
    /// started, so it costs nothing on the usual path.
    static func sweepStaleKeepers(in directory: String) {
        guard let dir = opendir(directory) else { return }
        var names = Set<String>()
        while let entry = readdir(dir) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard file.hasPrefix("keeper-") else { continue }
            for suffix in [".sock", ".lock", ".log"] where file.hasSuffix(suffix) {
                names.insert(String(file.dropLast(suffix.count)))
            }
        }
        closedir(dir)
        for name in names.sorted() {
            let stale = KeeperPaths(directory: directory, name: name)
            let lockFD = open(stale.lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard lockFD >= 0 else { continue }
            defer { close(lockFD) }
            // Held: a CLI is starting this keeper right now (ours among them).
            guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else { continue }
            let live: Int32?
            do { live = try connectIfServing(stale) } catch { continue }  // not provably dead
            if let live {  // a keeper answers there
                close(live)
                continue
            }
            unlink(stale.socket)
            unlink(stale.log)
            unlink(stale.lock)
        }
    }

    /// A long-lived process (a library user) may start more than one keeper over its life:
    /// reap the ones that have exited so they don't stay zombies.
    private static func reapExitedKeepers() {
        spawnedLock.withLock {
            spawned.removeAll { pid in
                var status: Int32 = 0
                let result = waitpid(pid, &status, WNOHANG)
                return result == pid || (result < 0 && errno == ECHILD)
            }
        }
    }
}
