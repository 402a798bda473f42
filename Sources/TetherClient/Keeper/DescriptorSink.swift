import CTetherPosix
import Glibc
import TetherIO
import TetherProtocol

/// A CLI's stdout, handed to the keeper with its open request (SCM_RIGHTS), so that the
/// bodies of its stdout records go from the link straight into it: the CLI neither reads
/// nor writes them, and the keeper doesn't write them into the CLI's socket — as
/// OpenSSH's ControlMaster writes into its mux clients' descriptors. Loop-confined; one
/// per CLI stream that offered its stdout (docs/architecture.md, "Client keeper").
///
/// Everything for the CLI goes through here, in order: a stdout record's body is written
/// into the descriptor and then the record reaches the CLI with its body emptied (same
/// seq, same kind) — so the CLI sees every record, in order, after its bytes are out, and
/// its acknowledgement covers only bytes that write(2) took; every other frame waits
/// behind the writes before it. Nothing is acknowledged here: the CLI still does that.
///
/// Never blocking the keeper's loop: a pipe arrives as its own non-blocking open file
/// description (the CLI reopened it), a socket is written with MSG_DONTWAIT, and a
/// regular file or a memory device (/dev/null) does not block. A reader that doesn't read
/// stops the writes (the descriptor is watched for room); the records behind wait here,
/// bounded by the host's window per channel, and the CLI acknowledges nothing more.
///
/// The descriptor's end (`retire`): at a command's end (before the CLI hears of it, so a
/// downstream `| cat` sees EOF once the CLI exits), when the CLI detaches, when its
/// channel ends, when the link ends, and at a write error — then the record that failed,
/// from its first unwritten byte, and everything after reach the CLI whole, as without a
/// keeper: its own write meets the error (EPIPE, ENOSPC) and it reports it as it always
/// has, or succeeds, and nothing is written twice.
final class DescriptorSink {
    private enum Item {
        /// A stdout record whose body goes into the descriptor from `written` on.
        case record(WireFrame, written: Int)
        /// A frame for the CLI, as it is.
        case frame([UInt8])
        /// The descriptor's last use is before this point.
        case retire
    }

    private let reactor: Reactor
    /// -1 once retired.
    private var descriptor: Int32
    private let isSocket: Bool
    private var items: [Item] = []
    private var head = 0
    private var registration: Registration?
    /// Bytes queued here for the CLI or its descriptor.
    private(set) var pendingBytes = 0
    /// Waiting for room in the descriptor.
    var isBlocked: Bool { registration != nil }
    /// Bytes the CLI gets through its socket.
    private let forward: ([UInt8]) -> Void
    /// An emptied record for the CLI: it only tells the CLI how far its stdout got, so it
    /// may wait a moment for the next ones (`KeeperClient`: one wake-up of the CLI for
    /// several records instead of one each).
    private let forwardEmptied: ([UInt8]) -> Void
    /// Why the descriptor was given up early, for the keeper's log.
    var onWriteError: (Int32) -> Void = { _ in }

    /// Takes `descriptor` (closed by this sink), or returns nil (and closes it) when it is
    /// not one the keeper can write without blocking.
    init?(descriptor: Int32, reactor: Reactor, forward: @escaping ([UInt8]) -> Void,
          forwardEmptied: @escaping ([UInt8]) -> Void) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { Glibc.close(descriptor); return nil }
        let type = info.st_mode & S_IFMT
        let flags = fcntl(descriptor, F_GETFL)
        let writable = flags >= 0 && (flags & O_ACCMODE == O_WRONLY || flags & O_ACCMODE == O_RDWR)
        switch type {
        case S_IFIFO where flags & O_NONBLOCK != 0, S_IFSOCK, S_IFREG:
            break
        case S_IFCHR where DescriptorSink.major(info.st_rdev) == 1:  // /dev/null, /dev/zero, /dev/full
            break
        default:
            Glibc.close(descriptor)
            return nil
        }
        guard writable || type == S_IFSOCK else { Glibc.close(descriptor); return nil }
        self.descriptor = descriptor
        self.isSocket = type == S_IFSOCK
        self.reactor = reactor
        self.forward = forward
        self.forwardEmptied = forwardEmptied
    }

    /// glibc's gnu_dev_major: the device class (1: memory devices — /dev/null, /dev/full).
    static func major(_ device: UInt) -> UInt { (device >> 8) & 0xfff | (device >> 32) & ~0xfff }

    // MARK: Input from the link

    /// A record for the CLI (its wire bytes, channel already the CLI's).
    func record(_ wire: WireFrame) {
        let kind = wire.bytes.count > Self.recordHead ? wire.bytes[Self.recordHead - 1] : 0
        if descriptor >= 0 && kind == Record.Kind.stdout.rawValue {
            enqueue(.record(wire, written: 0), bytes: wire.bytes.count)
            return
        }
        switch Record.Kind(rawValue: kind) {
        case .commandEnded?, .sessionClosed?, .sessionBroken?:
            // The CLI may exit as soon as it reads this: the descriptor closes first.
            enqueue(.retire, bytes: 0)
        default:
            break
        }
        enqueue(.frame(wire.bytes), bytes: wire.bytes.count)
    }

    /// Any other frame for the CLI; `ends` says it ends the CLI's use of its channel (an
    /// error, a take-over, a removal): the descriptor's use ends before it.
    func frame(_ bytes: [UInt8], ends: Bool = false) {
        if ends { enqueue(.retire, bytes: 0) }
        enqueue(.frame(bytes), bytes: bytes.count)
    }

    /// The CLI detached (or gave up) a channel, or its link ended: the descriptor goes
    /// now, and what waits here reaches the CLI as it is (records whole from their first
    /// unwritten byte) — the CLI writes them, or leaves them unacknowledged on the host.
    func retireNow() {
        closeDescriptor()
        pump()
    }

    /// The CLI is gone: nothing more for it, and the descriptor goes at once.
    func drop() {
        closeDescriptor()
        items = []
        head = 0
        pendingBytes = 0
    }

    // MARK: Writing

    private func enqueue(_ item: Item, bytes: Int) {
        if head == items.count, case .frame(let frame) = item {
            forward(frame)  // nothing waits: straight on
            return
        }
        items.append(item)
        pendingBytes += bytes
        if registration == nil { pump() }
    }

    /// Works through the queue until the descriptor has no room (or the queue is empty).
    private func pump() {
        while head < items.count {
            switch items[head] {
            case .frame(let bytes):
                pop(bytes.count)
                forward(bytes)
            case .retire:
                pop(0)
                closeDescriptor()
            case .record(let wire, var written):
                guard descriptor >= 0 else {
                    pop(wire.bytes.count)
                    forward(Self.remainder(of: wire, from: written))
                    continue
                }
                switch write(wire, from: &written) {
                case .done:
                    pop(wire.bytes.count)
                    forwardEmptied(Self.emptied(wire))
                case .wouldBlock:
                    items[head] = .record(wire, written: written)
                    if head > 256 && head * 2 > items.count {
                        items.removeFirst(head)
                        head = 0
                    }
                    awaitRoom()
                    return
                case .failed(let code):
                    onWriteError(code)
                    closeDescriptor()
                    items[head] = .record(wire, written: written)  // the loop passes it on
                }
            }
        }
        if head > 0 {
            items = []
            head = 0
        }
    }

    private enum WriteOutcome { case done, wouldBlock, failed(Int32) }

    private func write(_ wire: WireFrame, from written: inout Int) -> WriteOutcome {
        let total = wire.bytes.count - Self.recordHead
        while written < total {
            let n = wire.bytes.withUnsafeBytes { raw -> Int in
                let start = raw.baseAddress! + Self.recordHead + written
                let count = total - written
                return isSocket ? tether_send_nonblocking(descriptor, start, UInt(count)) : Glibc.write(descriptor, start, count)
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return .wouldBlock }
                return .failed(errno)
            }
            written += n
        }
        return .done
    }

    private func pop(_ bytes: Int) {
        items[head] = .retire  // lets go of the bytes
        head += 1
        pendingBytes -= bytes
    }

    private func awaitRoom() {
        guard registration == nil else { return }
        registration = reactor.register(fd: descriptor, interest: .writable) { [weak self] _ in
            guard let self else { return }
            // Room, or the reader is gone (error/hangup): the next write says which.
            self.stopWaitingForRoom()
            self.pump()
        }
    }

    private func stopWaitingForRoom() {
        if let registration { reactor.unregister(registration) }
        registration = nil
    }

    private func closeDescriptor() {
        stopWaitingForRoom()
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }

    // MARK: Records

    /// `u32 length | u8 type | u32 channel | u64 seq | u8 kind`: where a record's body starts.
    static let recordHead = 4 + Frame.headerLength + 9

    /// The record as the CLI gets it once its body is out: same channel, seq and kind.
    static func emptied(_ wire: WireFrame) -> [UInt8] {
        remainder(of: wire, from: wire.bytes.count - recordHead)
    }

    /// The record from its first unwritten byte on (whole if nothing was written): same
    /// channel, seq and kind, re-framed around what is left of the body.
    static func remainder(of wire: WireFrame, from written: Int) -> [UInt8] {
        guard written > 0 else { return wire.bytes }
        let recordFields = wire.bytes[(4 + Frame.headerLength)..<recordHead]  // seq, kind
        let body = wire.bytes[(recordHead + written)...]
        var bytes: [UInt8] = []
        bytes.reserveCapacity(recordHead + body.count)
        Frame.appendHeader(to: &bytes, type: wire.type, channel: wire.channel,
                           payloadLength: recordFields.count + body.count)
        bytes += recordFields
        bytes += body
        return bytes
    }
}
