import Glibc
import TetherIO

/// Feeds a command's stdin FIFO from `stdinData` frames and ends it at `stdinEOF`.
///
/// We hold the FIFO open read-write from before the driver line is sent, so bash's
/// `< fifo` never waits. Closing our end is what makes the command see EOF — but only once
/// bash has opened the FIFO (it says `s` on the status pipe): closed any earlier, bash's
/// open(2) would wait for a writer that never comes.
final class StdinFeeder {
    let path: String
    private let writer: PipeWriter
    private var bashOpenedIt = false
    private var endRequested = false

    /// Stdin frames beyond this many queued bytes pause the sending connection.
    static let highWatermark = 1 << 20

    init(reactor: Reactor, path: String, fd: Int32) {
        self.path = path
        writer = PipeWriter(reactor: reactor, fd: fd, name: "stdin FIFO \(path)")
    }

    var pendingBytes: Int { writer.pendingBytes }
    var isBackedUp: Bool { writer.pendingBytes > StdinFeeder.highWatermark }

    /// The queue emptied: a paused sender may resume.
    var onDrained: () -> Void {
        get { writer.onDrained }
        set { writer.onDrained = newValue }
    }

    func write(_ bytes: [UInt8]) {
        guard !endRequested else { return }  // data after EOF is discarded
        writer.write(bytes)
    }

    /// The client's `stdinEOF` has arrived (all its stdin before it did too).
    var inputEnded: Bool { endRequested }

    func endOfInput() {
        endRequested = true
        if bashOpenedIt { writer.finish() }
    }

    func bashOpened() {
        bashOpenedIt = true
        if endRequested { writer.finish() }
    }

    /// The command ended: drop unread input, remove the FIFO.
    func close() {
        writer.close()
        unlink(path)
    }
}
