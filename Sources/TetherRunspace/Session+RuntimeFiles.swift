import Glibc
import TetherIO

extension Session {
    /// The runtime directory was cleaned under us (systemd-tmpfiles aging, `rm -rf` of
    /// /tmp/tether-UID): make the directories again (ours, 0700 — refused as before if
    /// another user got there first) and bind the session's socket again, so the
    /// subsystem, the registry and clients' direct channels reach the session by its path
    /// as before. Connections already open never depended on the path. The work directory
    /// gets its stream FIFO and `bin/tether-*` commands back at once, so the session's
    /// `tether-warning` and the others (and programs holding $TETHER_STREAMS) keep working;
    /// the command's script files are re-made by the next command (`WorkDirectory.prepare`).
    /// Asked by the registry, which watches the directory (`restoreSocket`), or by SIGUSR1
    /// (as tmux). Throws what stood in the way (the registry logs it); connections already
    /// open go on, and the next request or SIGUSR1 tries again.
    func restoreRuntimeFiles() throws {
        guard !shuttingDown, let listener else { return }
        if !listener.isReachable {
            try SecureDirectory.prepare(options.paths.runtimeDirectory)
            try SecureDirectory.prepare(options.paths.sessionsDirectory)
        }
        // Also when the socket is still there: SIGUSR1 after a cleaner took only the
        // session's files.
        try workDirectory.restoreStreamFiles()
        try listener.restoreIfGone()
    }
}
