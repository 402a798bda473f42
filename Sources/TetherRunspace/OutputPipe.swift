import Glibc
import TetherIO
import TetherProtocol

/// The read end of bash's stdout or stderr pipe. Bash and everything it starts (background
/// jobs included) share the write end for the whole session.
///
/// Reading can be switched off (the journal is full in `block` mode, or a reader is backed
/// up): then the pipe fills and writers block in write(2) — that is the back-pressure.
/// `owed` counts bytes that were in the pipe when a command's status arrived; they were
/// written before the command ended and must be read before its `commandEnded`.
final class OutputPipe {
    let kind: Record.Kind
    private let reactor: Reactor
    private(set) var fd: Int32
    private var registration: Registration?
    /// Bytes that must still be read before the pending command end (or exit) is reported.
    private(set) var owed = 0

    /// A chunk of output (≤ `Record.maxDataLength`).
    var onData: ([UInt8]) -> Void = { _ in }
    /// Asked before every read: may output be taken now?
    var mayRead: () -> Bool = { true }
    /// Reading ended (end of file, or EIO: a terminal's last slave closed).
    var onEnd: () -> Void = {}

    init(reactor: Reactor, fd: Int32, kind: Record.Kind) {
        self.reactor = reactor
        self.fd = fd
        self.kind = kind
        setNonBlocking(fd)
    }

    var isOpen: Bool { fd >= 0 }

    /// Starts or stops watching the pipe. Stopped, it is not polled at all (a hang-up then
    /// waits too: whatever is still in the pipe is read after resuming).
    func setWatching(_ watching: Bool) {
        guard isOpen else { return }
        if watching, registration == nil {
            registration = reactor.register(fd: fd, interest: .readable) { [weak self] _ in
                self?.readSome(budget: 4)
            }
        } else if !watching, let registration {
            reactor.unregister(registration)
            self.registration = nil
        }
    }

    /// Remembers how much is in the pipe right now (FIONREAD): all of it precedes the
    /// status line or exit that was just seen.
    func noteOwed() {
        guard isOpen else { owed = 0; return }
        var available: Int32 = 0
        if ioctl(fd, UInt(FIONREAD), &available) == 0 {
            owed = max(owed, Int(available))
        }
    }

    /// Reads what is owed, as far as `mayRead` allows. Returns true when nothing is owed.
    @discardableResult
    func readOwed() -> Bool {
        while owed > 0 && isOpen && mayRead() {
            if !readOnce() { break }
        }
        return owed == 0 || !isOpen
    }

    /// Reads up to `budget` chunks (bounded so one chatty command can't starve the loop).
    private func readSome(budget: Int) {
        for _ in 0..<budget {
            guard isOpen else { return }
            guard mayRead() else {
                setWatching(false)  // not polled until `updateReading` allows it again
                return
            }
            guard readOnce() else { return }
        }
    }

    /// One read(2). Returns false when there was nothing to read (EAGAIN) or the pipe ended.
    ///
    /// The read lands in the array that becomes the record's body — journaled and sent
    /// from there (writev), never copied again. The array is as big as what the pipe
    /// holds (FIONREAD), at most a record: the journal's memory is the bytes it counts,
    /// not a quarter more for reads that came up short.
    private func readOnce() -> Bool {
        var n = 0
        var error: Int32 = 0
        var available: Int32 = 0
        // Nothing announced: a small read still tells end of file from EAGAIN.
        let size = ioctl(fd, UInt(FIONREAD), &available) == 0 && available > 0
            ? min(Int(available), Record.maxDataLength) : 4096
        var chunk = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            n = read(fd, buffer.baseAddress, buffer.count)
            error = errno
            count = max(0, n)
        }
        if n < 0 {
            if error == EINTR { return true }
            if error == EAGAIN || error == EWOULDBLOCK { return false }
            close()  // EIO and the like: nothing more will come
            onEnd()
            return false
        }
        if n == 0 {
            close()  // every writer is gone
            onEnd()
            return false
        }
        owed = max(0, owed - n)
        if n < size / 2 { chunk = Array(chunk[0..<n]) }
        onData(chunk)
        return true
    }

    func close() {
        guard isOpen else { return }
        if let registration { reactor.unregister(registration) }
        registration = nil
        Glibc.close(fd)
        fd = -1
        owed = 0
    }
}
