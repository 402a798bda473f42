import Glibc
import TetherIO
import TetherProtocol

/// The per-user registry process. (Stub until the registry lands.)
public enum RegistryServer {
    /// Runs the registry until it is told to stop. `readyFD` gets "ok\n" once listening.
    public static func run(paths: HostPaths, readyFD: Int32?) -> Never {
        exit(1)
    }
}
