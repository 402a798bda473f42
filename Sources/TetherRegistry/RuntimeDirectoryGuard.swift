import Glibc
import TetherIO

/// Keeps the runtime directory (`/tmp/tether-UID`) usable when the host's housekeeping
/// removes it or what is in it under a running registry — systemd-tmpfiles ages /tmp, an
/// admin's cleanup runs `rm -rf /tmp/*`. Nothing of a session lives there that a cleaner
/// can destroy (open sockets and the runspaces' descriptors survive an unlink); what goes
/// is the *names* new connections use. So when the directory watch (inotify) says
/// something left the directory, or on SIGUSR1 (tmux's convention), the registry makes the
/// directories again with the same owner and mode checks as at start, takes its pid lock
/// on a fresh file, binds `registry.sock` and `gateway.sock` again, and asks each
/// runspace whose socket went to bind its own again (`restoreSocket`).
///
/// Why not `$XDG_RUNTIME_DIR`: logind removes it at the user's last logout (and tmpfs-
/// mounts it per login), and sessions must outlive every logout.
final class RuntimeDirectoryGuard {
    private let registry: Registry
    private let paths: HostPaths
    private let log: HostLog
    private var watch: DirectoryWatch?
    private var pidLock: RegistryPIDLock
    private let sockets: [UnixListener]

    /// The pid lock held now (a fresh one once a cleaner removed the first file): what a
    /// hand-over to an upgraded image passes on.
    var pidLockFD: Int32 { pidLock.fd }

    init(registry: Registry, pidLock: RegistryPIDLock, sockets: [UnixListener]) {
        self.registry = registry
        self.paths = registry.paths
        self.log = registry.log
        self.pidLock = pidLock
        self.sockets = sockets
    }

    /// Starts watching. Without inotify (its per-user limit reached) the registry still
    /// restores on SIGUSR1; that is logged.
    func start() {
        do {
            let watch = try DirectoryWatch(reactor: registry.reactor)
            watch.onChange = { [unowned self] changes in self.handle(changes) }
            self.watch = watch
            try watchDirectories()
        } catch {
            log.write("not watching \(paths.runtimeDirectory) (\(error)): if a cleaner removes it, send the registry SIGUSR1")
        }
    }

    private func watchDirectories() throws {
        try watch?.watch(paths.runtimeDirectory)
        try watch?.watch(paths.sessionsDirectory)
    }

    private func handle(_ changes: [DirectoryWatch.Change]) {
        // Entries of the sessions directory only: a session's own files (its socket also
        // goes when it ends normally) — check just those sessions.
        var sessionIDs: Set<String> = []
        for change in changes {
            guard case .entryRemoved(let directory, let name) = change, directory == paths.sessionsDirectory else {
                restore(why: "the runtime directory changed")
                return
            }
            if let dot = name.lastIndex(of: ".") { sessionIDs.insert(String(name[..<dot])) }
        }
        restoreSessionSockets(only: sessionIDs)
    }

    /// Makes everything again that is missing. Safe to call at any time: what is intact is
    /// left alone (a few stat calls).
    func restore(why: String) {
        do {
            try paths.prepare()
        } catch {
            log.write("cannot re-create the runtime directory (\(why)): \(error)")
            return
        }
        // Watch the new directories before looking, so a removal after the look is seen.
        do { try watchDirectories() } catch { log.write("cannot watch \(paths.runtimeDirectory) again: \(error)") }
        restorePIDLock()
        for socket in sockets {
            do {
                if try socket.restoreIfGone() { log.write("re-created \(socket.path) (\(why))") }
            } catch {
                log.write("cannot re-create \(socket.path): \(error)")
            }
        }
        restoreSessionSockets(only: nil)
    }

    private func restorePIDLock() {
        let path = paths.registryPIDFile
        guard !pidLock.isIntact(path: path) else { return }
        do {
            switch try RegistryPIDLock.acquire(path: path) {
            case .acquired(let fresh):
                pidLock.release()
                pidLock = fresh
                log.write("re-created \(path)")
            case .heldByAnotherRegistry(let pid):
                log.write("\(path) was re-created by another registry (pid \(pid.map(String.init) ?? "unknown")) while it was gone; both now serve \(paths.runtimeDirectory)")
            }
        } catch {
            log.write("cannot re-create \(path): \(error)")
        }
    }

    /// Asks each live runspace whose socket is gone (all of them, or those in `only`) to
    /// bind it again.
    private func restoreSessionSockets(only ids: Set<String>?) {
        let candidates = ids.map { $0.compactMap { registry.sessions[$0] } } ?? Array(registry.sessions.values)
        for session in candidates {
            guard let control = session.control, control.isOpen else { continue }
            if !RuntimeDirectoryGuard.isSocket(paths.runspaceSocket(session.instanceID)), !control.restoreSocket() {
                log.write("session \(session.instanceID): its socket was removed and its runspace, of an earlier release, can't bind it again: new connections can't attach to it (tether remove still ends it)")
            }
        }
    }

    private static func isSocket(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }
}
