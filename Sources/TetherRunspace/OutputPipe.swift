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
    /// What `setWatching` was last asked for; a hold defers it.
    private var wantsWatching = false
    /// When the last wake-up to read began (Reactor.now()).
    private var lastWakeAt: UInt64 = 0
    /// Set while reading holds off to let a streaming writer fill the pipe (see `hold`).
    private var holdTimer: TimerHandle?

    /// The pipe's capacity (F_GETPIPE_SZ): a hold must not let the writer fill it.
    private let capacity: Int

    /// A wake-up that drains the pipe within this of the previous one holds the next one
    /// off for `holdNanoseconds` (`holdIfStreaming`): a writer is streaming (`head -c`,
    /// `cat` write 4–8 KiB at a time), and a reader that takes every few KiB as they come
    /// makes a record, a frame and a wake-up of every process on the path for each.
    /// Measured on a 1 GB stream: ~30,000 records of ~35 KB without the hold, ~4,300 of
    /// ~230 KB with it.
    static let streamingGapNanoseconds: UInt64 = 2_000_000
    /// At ~300 MB/s that is ~300 KB: about a full record per read. A command that writes
    /// a line now and then never waits (its reads are far apart), and the bytes a finished
    /// command still has in the pipe are read at once (`readOwed` ignores the hold).
    static let holdNanoseconds: UInt64 = 1_000_000

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
        capacity = pipeCapacity(fd) ?? 4096
    }

    var isOpen: Bool { fd >= 0 }

    /// Starts or stops watching the pipe. Stopped, it is not polled at all (a hang-up then
    /// waits too: whatever is still in the pipe is read after resuming).
    func setWatching(_ watching: Bool) {
        guard isOpen else { return }
        wantsWatching = watching
        if watching, holdTimer == nil, registration == nil {
            registration = reactor.register(fd: fd, interest: .readable) { [weak self] _ in
                self?.readSome(budget: 4)
            }
        } else if !watching || holdTimer != nil, let registration {
            reactor.unregister(registration)
            self.registration = nil
        }
    }

    /// Stops watching the pipe for `holdNanoseconds`, then watches it again if still wanted.
    private func hold() {
        guard holdTimer == nil else { return }
        holdTimer = reactor.schedule(after: Double(Self.holdNanoseconds) / 1e9) { [weak self] in
            guard let self else { return }
            self.holdTimer = nil
            self.setWatching(self.wantsWatching)
        }
        setWatching(wantsWatching)
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
            if readOnce() == nil { break }
        }
        return owed == 0 || !isOpen
    }

    /// Reads up to `budget` chunks (bounded so one chatty command can't starve the loop),
    /// until the pipe is drained; then perhaps holds the next wake-up off (`holdIfStreaming`).
    private func readSome(budget: Int) {
        let now = Reactor.now()
        let sincePrevious = now &- lastWakeAt
        lastWakeAt = now
        var taken = 0
        for _ in 0..<budget {
            guard isOpen else { return }
            guard mayRead() else {
                setWatching(false)  // not polled until `updateReading` allows it again
                return
            }
            guard let n = readOnce() else { return }
            taken += n
            // Less than a record: that was all the pipe held (the read is sized to it).
            if n > 0 && n < Record.maxDataLength {
                holdIfStreaming(taken: taken, since: sincePrevious)
                return
            }
        }
    }

    /// After a wake-up that drained the pipe soon after the previous one, stops watching
    /// for `holdNanoseconds` — only if, at the rate the output came in, a hold's worth
    /// fills at most half the pipe: a faster writer would block in write(2), and the hold
    /// would cost throughput instead of wake-ups.
    private func holdIfStreaming(taken: Int, since gap: UInt64) {
        guard gap < Self.streamingGapNanoseconds,
              UInt64(taken) &* Self.holdNanoseconds <= UInt64(capacity / 2) &* max(gap, 1) else { return }
        hold()
    }

    /// One read(2): the bytes read (0 after EINTR), nil when there was nothing to read
    /// (EAGAIN) or the pipe ended.
    ///
    /// The read lands in the array that becomes the record's body — journaled and sent
    /// from there (writev), never copied again. The array is as big as what the pipe
    /// holds (FIONREAD), at most a record: the journal's memory is the bytes it counts,
    /// not a quarter more for reads that came up short.
    private func readOnce() -> Int? {
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
            if error == EINTR { return 0 }
            if error == EAGAIN || error == EWOULDBLOCK { return nil }
            close()  // EIO and the like: nothing more will come
            onEnd()
            return nil
        }
        if n == 0 {
            close()  // every writer is gone
            onEnd()
            return nil
        }
        owed = max(0, owed - n)
        if n < size / 2 { chunk = Array(chunk[0..<n]) }
        onData(chunk)
        return n
    }

    func close() {
        guard isOpen else { return }
        if let registration { reactor.unregister(registration) }
        registration = nil
        if let holdTimer { reactor.cancel(holdTimer) }
        holdTimer = nil
        Glibc.close(fd)
        fd = -1
        owed = 0
    }
}
