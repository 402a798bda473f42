import Dispatch
import Glibc
import TetherClient
import TetherIO

/// Ctrl-C while waiting for remote commands: the first one asks the hosts to interrupt
/// the commands (SIGINT to their process groups); the second stops waiting (exit 130)
/// and leaves the commands to the hosts. With nothing to interrupt (`receive`, or every
/// target reconnecting after a lost connection) the first one stops waiting.
final class InterruptHandler: Sendable {
    private let lock = Lock()
    nonisolated(unsafe) private var count = 0                       // guarded by lock
    nonisolated(unsafe) private var source: DispatchSourceSignal?   // kept alive
    private let onFirst: @Sendable () -> Void
    /// True when there is nothing to interrupt, only waiting to stop (every target is
    /// reconnecting after a lost connection): then the first Ctrl-C stops waiting.
    private let nothingToInterrupt: @Sendable () -> Bool

    init(onFirst: @escaping @Sendable () -> Void, nothingToInterrupt: @escaping @Sendable () -> Bool = { false }) {
        self.onFirst = onFirst
        self.nothingToInterrupt = nothingToInterrupt
    }

    func install() {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: DispatchQueue(label: "tether.sigint"))
        source.setEventHandler { [self] in self.fired() }
        source.resume()
        lock.withLock { self.source = source }
    }

    private func fired() {
        let n = lock.withLock { count += 1; return count }
        if n == 1 && nothingToInterrupt() {
            Terminal.shared.err("tether: stopped waiting; the command goes on on the host (tether receive collects its output)\n")
            Terminal.shared.setFooter([])  // no progress bar left on the screen
            TetherClient.shutdownEventLoop()
            exit(130)
        } else if n == 1 {
            Terminal.shared.err("tether: interrupting the remote command (Ctrl-C again to stop waiting)\n")
            onFirst()
        } else {
            Terminal.shared.err("tether: stopped waiting; the command may still run on the host (tether receive collects its output)\n")
            Terminal.shared.setFooter([])  // no progress bar left on the screen
            TetherClient.shutdownEventLoop()
            exit(130)
        }
    }
}
