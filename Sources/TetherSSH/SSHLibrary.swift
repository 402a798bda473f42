import CLibSSH2
import TetherIO

/// Process-wide libssh2 setup.
public enum SSHLibrary {
    private static let lock = Lock()
    nonisolated(unsafe) private static var initialized = false

    /// `libssh2_init(0)` once; idempotent and thread-safe. `SSHConnection` calls it too.
    public static func initialize() {
        lock.withLock {
            guard !initialized else { return }
            _ = libssh2_init(0)
            initialized = true
        }
    }
}
