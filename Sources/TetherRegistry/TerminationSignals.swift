import Glibc
import TetherIO

/// Turns SIGTERM/SIGINT into a readable pipe on the Reactor (the self-pipe trick), so the
/// registry shuts down between two events instead of inside one. (SIGUSR1, "restore the
/// runtime directory", comes the same way: `RuntimeDirectoryGuard`.)
enum TerminationSignals {
    /// Written by the signal handler. Set once, before the handler is installed, and only
    /// read afterwards, which is what makes touching it from a handler safe.
    nonisolated(unsafe) private static var wakeFD: Int32 = -1

    static func watch(reactor: Reactor, signals: [Int32] = [SIGTERM, SIGINT],
                      _ onSignal: @escaping (Int32) -> Void) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError.last("pipe") }
        for fd in fds { setNonBlocking(fd); setCloseOnExec(fd) }
        wakeFD = fds[1]
        let readFD = fds[0]
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(TerminationSignals.wakeFD, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signal, &action, nil)
        }
        reactor.register(fd: readFD, interest: .readable) { _ in
            var byte: UInt8 = 0
            while read(readFD, &byte, 1) == 1 {
                onSignal(Int32(byte))
            }
        }
    }
}
