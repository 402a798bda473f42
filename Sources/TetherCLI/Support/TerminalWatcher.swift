import CTetherPosix
import Dispatch
import Glibc
import TetherIO

/// While a command runs in `tether enter`: one thread polls the terminal, the Ctrl-C pipe
/// and a stop pipe. Typed bytes go through the escape scanner (`~.` detaches) and on to
/// the command's stdin; Ctrl-C and escapes become events. `stop()` returns once the thread
/// no longer touches the terminal, so the prompt can have it back: nothing typed ahead
/// for the prompt is read here unless a command was running when it arrived.
final class TerminalWatcher: Sendable {
    enum Event: Sendable {
        case interrupt
        case detach
        /// The local window changed size.
        case resize
    }

    /// What was typed (escapes removed); finishes at end of file (Ctrl-D) or `stop()`.
    let typed: AsyncStream<[UInt8]>
    /// Ctrl-C, `~.` and window changes.
    let events: AsyncStream<Event>
    private let stopPipe: (read: Int32, write: Int32)
    private let stopped = DispatchSemaphore(value: 0)

    init(terminal: Int32 = 0, interrupts: InterruptPipe) throws {
        var fds: [Int32] = [0, 0]
        guard tether_pipe2(&fds, O_CLOEXEC) == 0 else { throw SystemError.last("pipe2") }
        stopPipe = (fds[0], fds[1])
        var typedSink: AsyncStream<[UInt8]>.Continuation!
        var eventSink: AsyncStream<Event>.Continuation!
        typed = AsyncStream { typedSink = $0 }
        events = AsyncStream { eventSink = $0 }
        let typedOut = typedSink!
        let eventOut = eventSink!
        let stopRead = fds[0]
        let stopped = self.stopped
        interrupts.drain()  // Ctrl-Cs at the prompt were the prompt's
        try BackgroundThread.start {
            Self.watch(terminal: terminal, interrupts: interrupts.readEnd, stop: stopRead,
                       typed: typedOut, events: eventOut)
            typedOut.finish()
            eventOut.finish()
            stopped.signal()
        }
    }

    /// Stops watching and waits until the thread is done with the terminal.
    func stop() {
        var byte: UInt8 = 1
        _ = write(stopPipe.write, &byte, 1)
        stopped.wait()
        close(stopPipe.read)
        close(stopPipe.write)
    }

    private static func watch(terminal: Int32, interrupts: Int32, stop: Int32,
                              typed: AsyncStream<[UInt8]>.Continuation,
                              events: AsyncStream<Event>.Continuation) {
        var scanner = EscapeScanner()
        var terminalOpen = true
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var fds = [pollfd(fd: stop, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: interrupts, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: terminalOpen ? terminal : -1, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[0].revents != 0 { return }
            if fds[1].revents != 0 {
                let count = read(interrupts, &buffer, buffer.count)
                if count > 0 {
                    if buffer[0..<count].contains(UInt8(ascii: "i")) { events.yield(.interrupt) }
                    if buffer[0..<count].contains(UInt8(ascii: "w")) { events.yield(.resize) }
                }
            }
            if fds[2].revents != 0 {
                let n = read(terminal, &buffer, buffer.count)
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if n <= 0 {
                    // Ctrl-D: the command's input ends; Ctrl-C and the stop still count.
                    terminalOpen = false
                    typed.finish()
                    continue
                }
                let (forward, action) = scanner.scan(Array(buffer[0..<n]))
                if !forward.isEmpty { typed.yield(forward) }
                switch action {
                case .detach?:
                    events.yield(.detach)
                    return
                case .help?:
                    Terminal.shared.err(EscapeScanner.help)
                case nil:
                    break
                }
            }
        }
    }
}
