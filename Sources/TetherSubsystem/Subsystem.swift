import Glibc
import TetherIO
import TetherProtocol

/// What sshd runs for `ssh -s tether`: multiplexes the session protocol on stdio.
/// (Stub until the subsystem lands.)
public enum Subsystem {
    public static func run(paths: HostPaths) -> Never {
        exit(1)
    }
}
