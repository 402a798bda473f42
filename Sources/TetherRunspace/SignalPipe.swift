import Glibc
import CTetherPosix
import TetherIO

/// Turns signals into bytes on a pipe the Reactor watches (the self-pipe trick), so
/// SIGCHLD and SIGTERM are handled on the loop like any other event, without polling.
final class SignalPipe {
    /// The handler runs on whatever thread the kernel picks and may only call
    /// async-signal-safe functions: it writes the signal number here and returns.
    nonisolated(unsafe) private static var writeFD: Int32 = -1

    private let readFD: Int32
    private let reactor: Reactor
    private var registration: Registration?

    /// Called on the loop, once per signal delivery (coalesced deliveries may merge).
    var onSignal: (Int32) -> Void = { _ in }

    /// One per process: installs handlers for `signals`.
    init(reactor: Reactor, signals: [Int32]) throws {
        precondition(SignalPipe.writeFD < 0, "one SignalPipe per process")
        var fds: [Int32] = [0, 0]
        guard tether_pipe2(&fds, Int32(O_NONBLOCK | O_CLOEXEC)) == 0 else {
            throw SystemError.last("pipe2 (signal pipe)")
        }
        readFD = fds[0]
        SignalPipe.writeFD = fds[1]
        self.reactor = reactor
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signo in
                let saved = errno
                var byte = UInt8(truncatingIfNeeded: signo)
                _ = write(SignalPipe.writeFD, &byte, 1)  // full pipe: a wake-up is already pending
                errno = saved
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            guard sigaction(signal, &action, nil) == 0 else {
                throw SystemError.last("sigaction(\(Signals.name(signal)))")
            }
        }
        registration = reactor.register(fd: readFD, interest: .readable) { [weak self] _ in
            self?.drain()
        }
    }

    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            // Deliver each signal once per batch: SIGCHLD handling reaps every child anyway.
            var seen = Set<UInt8>()
            for byte in buffer[0..<n] where seen.insert(byte).inserted {
                onSignal(Int32(byte))
            }
        }
    }
}
