import Glibc
import TetherIO
import TetherProtocol
import TetherRegistry

/// What sshd runs for `ssh -s tether`: multiplexes the session protocol on stdio onto the
/// per-user registry (started on demand) and one Unix connection per attached session.
public enum Subsystem {
    /// Serves the client on stdin/stdout until it goes away. Exit status: 0 when the
    /// client closed, 1 on an I/O error, 2 when the client broke the protocol.
    /// `route` says who started us: sshd's Subsystem line, or the registry's gateway.
    public static func run(paths: HostPaths, route: ConnectionRoute = .subsystem) -> Never {
        let paths = paths.absolute
        // A vanished client or runspace is an error return, not a signal.
        Signals.ignore(SIGPIPE)
        // A registry we start is our child until we exit; the kernel reaps it.
        Signals.ignore(SIGCHLD)

        // The log lives in the state directory; if that can't be prepared, the first
        // request that needs the registry reports why.
        try? paths.prepare()
        let log = HostLog(path: paths.logFile, tag: "subsystem")

        let reactor: Reactor
        do {
            reactor = try Reactor()
        } catch {
            log.write("cannot start the event loop: \(error)")
            exit(1)
        }
        // sshd hands us pipes of 64 KiB; a 256 KiB output record would take four writes and
        // four wake-ups of each side. 1 MiB (the unprivileged maximum) holds several.
        for fd in [Int32(0), 1] { setPipeCapacity(fd) }
        // The descriptors belong to sshd's channel: never closed early by us, so a last
        // error frame can still be written after the connection object is done.
        let stdio = FrameConnection(reactor: reactor, readFD: 0, writeFD: 1, name: "client", ownsDescriptors: false)
        // Output records then go from the runspaces' sockets into that pipe by splice(2).
        stdio.enableSplicing()
        let multiplexer = Multiplexer(reactor: reactor, paths: paths, log: log, client: stdio, route: route)
        multiplexer.onFinished = { status in
            exit(status)
        }
        stdio.start()
        reactor.run()
        exit(0)
    }
}
