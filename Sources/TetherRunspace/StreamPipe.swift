import Glibc
import TetherIO
import TetherProtocol

/// Where a session's (or a job's) commands write PowerShell's other streams: a FIFO in
/// the work directory, named by `$TETHER_STREAMS`, that the `tether-*` functions and
/// commands (`StreamFunctions`) open by path for each message — so a child program
/// that closed every descriptor still reaches it — and a second FIFO beside it
/// (`….ack`) on which the runspace answers one byte per message taken.
///
/// Each message is one write of NUL-terminated fields: the kind (`W`, `V`, `I`, or `P`
/// with percent, flags, activity and status). The writer waits for its answer, so a
/// command that writes stdout, then a warning, then stdout again has the three recorded
/// in that order: before taking a message the runspace reads what stdout and stderr
/// already hold (`BashInterpreter`), and the writer writes nothing more until the
/// message is journaled. Writers at the same time (background jobs, pipelines) are
/// ordered only as their writes happen to interleave.
///
/// Both FIFOs are opened read-write here, so a writer's open(2) never waits and the
/// reading end never sees end of file while the session lives.
final class StreamPipe {
    let path: String
    var ackPath: String { path + ".ack" }
    private let reactor: Reactor
    private var fd: Int32
    private var ackFD: Int32
    private var registration: Registration?
    private var pending: [UInt8] = []
    /// `readOnce`'s buffer, allocated on first use and kept: every command's end looks
    /// into the FIFO, and a fresh zeroed 16 KiB array per look cost more than the read.
    private var readBuffer: [UInt8] = []
    /// An answer went out since `discardStaleAnswers` last emptied the answer FIFO: only
    /// then can a stale one be in it (we are its only writer).
    private var answeredSinceDiscard = false

    /// A message became a record.
    var onRecord: (StreamRecord) -> Void = { _ in }
    /// The FIFO has something to read (the owner decides when to `readAvailable`).
    var onReadable: () -> Void = {}

    /// Text longer than this (per field) is cut: a record must fit a frame.
    static let maxFieldLength = 64 * 1024
    /// Bytes without a complete message after which the buffer is discarded (a writer
    /// that isn't one of ours).
    static let maxPending = 1 << 20

    /// Makes both FIFOs (0600, replacing anything left there) and opens them.
    init(reactor: Reactor, path: String) throws {
        self.reactor = reactor
        self.path = path
        (fd, ackFD) = try StreamPipe.make(at: path)
    }

    /// Both FIFOs made (anything at their paths replaced) and opened read-write.
    private static func make(at path: String) throws -> (fd: Int32, ackFD: Int32) {
        for file in [path, path + ".ack"] {
            unlink(file)
            guard mkfifo(file, 0o600) == 0 else { throw SystemError.last("mkfifo \(file)") }
        }
        let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let error = SystemError.last("open \(path)")
            unlink(path); unlink(path + ".ack")
            throw error
        }
        let ackFD = open(path + ".ack", O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard ackFD >= 0 else {
            let error = SystemError.last("open \(path).ack")
            Glibc.close(fd)
            unlink(path); unlink(path + ".ack")
            throw error
        }
        return (fd, ackFD)
    }

    var isOpen: Bool { fd >= 0 }

    /// A cleaner removed the FIFOs (an `rm -rf` of the runtime directory, tmpfiles aging):
    /// writers open them by path, so without this every `tether-warning` of the session
    /// would fall back to stderr from now on. Makes both again at the same path and reads
    /// those instead. The old FIFO's complete messages are taken first (their writers
    /// answered on the old answer FIFO), so what was written before the removal is not
    /// lost; only their order against stdout is not kept (read here, not after stdout).
    /// Returns whether they were made again (false: ours are still there).
    @discardableResult
    func restoreIfGone() throws -> Bool {
        guard isOpen, !StreamPipe.isSame(path, as: fd) || !StreamPipe.isSame(ackPath, as: ackFD) else { return false }
        readAvailable()
        let (newFD, newAckFD) = try StreamPipe.make(at: path)
        let watching = registration != nil
        setWatching(false)
        Glibc.close(fd)
        Glibc.close(ackFD)
        (fd, ackFD) = (newFD, newAckFD)
        pending.removeAll()  // a message cut short: its writer's rest went to the removed FIFO
        setWatching(watching)
        return true
    }

    /// Whether `path` is the FIFO `fd` has open (same inode), not gone or replaced.
    private static func isSame(_ path: String, as fd: Int32) -> Bool {
        var atPath = stat()
        var opened = stat()
        return lstat(path, &atPath) == 0 && fstat(fd, &opened) == 0
            && atPath.st_ino == opened.st_ino && atPath.st_dev == opened.st_dev
    }

    func setWatching(_ watching: Bool) {
        guard isOpen else { return }
        if watching, registration == nil {
            registration = reactor.register(fd: fd, interest: .readable) { [weak self] _ in self?.onReadable() }
        } else if !watching, let registration {
            reactor.unregister(registration)
            self.registration = nil
        }
    }

    /// One read(2) of what the FIFO holds, its complete messages turned into records and
    /// their writers answered. One read only: a writer answered here may write stdout and
    /// its next message at once, and that message must wait until the owner has read that
    /// stdout first (the poll wakes it again). Returns false when there was nothing.
    @discardableResult
    func readOnce() -> Bool {
        guard isOpen else { return false }
        if readBuffer.isEmpty { readBuffer = [UInt8](repeating: 0, count: 16 * 1024) }
        while true {
            let n = readBuffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            pending += readBuffer[0..<n]
            parse()
            return true
        }
    }

    /// Everything the FIFO holds (a command ended, or bash exited: nobody waits to write
    /// more in order).
    func readAvailable() {
        while readOnce() {}
    }

    /// Answers left over from writers that did not wait for them (killed, or not ours)
    /// would let later writers go on before their message is taken: dropped before each
    /// command.
    func discardStaleAnswers() {
        guard ackFD >= 0, answeredSinceDiscard else { return }
        answeredSinceDiscard = false
        var buffer = [UInt8](repeating: 0, count: 4096)
        while buffer.withUnsafeMutableBytes({ read(ackFD, $0.baseAddress, $0.count) }) > 0 {}
    }

    private func parse() {
        var start = 0
        while let message = nextMessage(from: start) {
            start = message.end
            if let record = message.record { onRecord(record) }
            answer()
        }
        if start > 0 { pending.removeFirst(start) }
        if pending.count > StreamPipe.maxPending { pending.removeAll() }
    }

    /// The message starting at `start`, if complete: its record (nil for one that is not
    /// understood) and where the next one starts.
    private func nextMessage(from start: Int) -> (record: StreamRecord?, end: Int)? {
        guard let kindEnd = pending[start...].firstIndex(of: 0) else { return nil }
        let kind = pending[start..<kindEnd]
        let fieldCount: Int
        switch kind.first {
        case UInt8(ascii: "P") where kind.count == 1: fieldCount = 4
        case UInt8(ascii: "W"), UInt8(ascii: "V"), UInt8(ascii: "I"): fieldCount = kind.count == 1 ? 1 : 0
        default: fieldCount = 0
        }
        var fields: [String] = []
        var cursor = kindEnd + 1
        for _ in 0..<fieldCount {
            guard let end = pending[cursor...].firstIndex(of: 0) else { return nil }
            let field = pending[cursor..<min(end, cursor + StreamPipe.maxFieldLength)]
            fields.append(String(decoding: field, as: UTF8.self))
            cursor = end + 1
        }
        guard fieldCount > 0 else { return (nil, cursor) }
        let record: StreamRecord?
        switch kind.first {
        case UInt8(ascii: "W"): record = .warning(fields[0])
        case UInt8(ascii: "V"): record = .verbose(fields[0])
        case UInt8(ascii: "I"): record = .information(fields[0])
        default:
            if let percent = Int(fields[0]), (-1...100).contains(percent) {
                record = .progress(ProgressRecord(activity: fields[2], status: fields[3],
                                                  percent: percent < 0 ? nil : percent, completed: fields[1] == "c"))
            } else {
                record = nil
            }
        }
        return (record, cursor)
    }

    private func answer() {
        var byte: UInt8 = 0x0a
        answeredSinceDiscard = true
        _ = write(ackFD, &byte, 1)  // a full answer FIFO: its readers are gone anyway
    }

    /// Closes and removes both FIFOs (a writer after this finds no FIFO and falls back to
    /// stderr).
    func close() {
        guard isOpen else { return }
        if let registration { reactor.unregister(registration) }
        registration = nil
        unlink(path)
        unlink(ackPath)
        Glibc.close(fd)
        Glibc.close(ackFD)
        fd = -1
        ackFD = -1
    }
}
