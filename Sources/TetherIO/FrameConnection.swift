import CTetherPosix
import Glibc
import TetherProtocol

/// Why a `FrameConnection` ended.
public enum CloseReason: Sendable, CustomStringConvertible {
    /// The peer closed cleanly between frames.
    case endOfStream
    /// The peer sent bytes that are not valid frames; an error frame was sent back.
    case protocolError(ProtocolError)
    case ioError(SystemError)
    /// `close()` was called on this side.
    case local

    public var description: String {
        switch self {
        case .endOfStream: "connection closed by peer"
        case .protocolError(let e): e.description
        case .ioError(let e): e.description
        case .local: "closed"
        }
    }
}

/// A framed, non-blocking, reactor-driven byte stream: stdio, a Unix socket or a pipe pair.
///
/// Reads are decoded into `Frame`s and handed to `onFrame`; writes are queued and flushed
/// as the descriptor allows. Backpressure both ways: `pauseReading()` stops reading (so the
/// kernel buffer fills and the peer blocks), and `onDrained` fires once queued output falls
/// below `lowWatermark`, which a producer uses to resume. Nothing here sleeps.
public final class FrameConnection {
    public let name: String
    public let reactor: Reactor
    public let readFD: Int32
    public let writeFD: Int32

    public var onFrame: (Frame) -> Void = { _ in }
    /// If set, frames arrive here as their wire bytes instead of through `onFrame`: a
    /// relay forwards them (`send(_:)`) without decoding and re-encoding the payload.
    public var onWireFrame: ((WireFrame) -> Void)?
    public var onClose: (CloseReason) -> Void = { _ in }
    /// Queued output fell to `lowWatermark` or below after having been above `highWatermark`.
    public var onDrained: () -> Void = {}
    /// Replaces read(2) on `readFD` (same contract: bytes read, 0 at EOF, -1 with errno):
    /// the keeper reads its CLIs with recvmsg(2), to take the descriptors they pass.
    public var reader: ((Int32, UnsafeMutableRawBufferPointer) -> Int)?

    public var highWatermark = 4 << 20
    public var lowWatermark = 1 << 20

    private var decoder = FrameDecoder()
    private var readRegistration: Registration?
    private var writeRegistration: Registration?
    /// What waits to be written, in order: bytes, or a frame to splice from another
    /// connection's socket (`SplicedFrame`), which nothing behind it overtakes.
    private var outbox: [Outgoing] = []
    private var outboxHead = 0
    /// Open `batchingWrites` scopes: sends only queue until the outermost one ends.
    private var corks = 0
    private var headOffset = 0
    public private(set) var pendingWriteBytes = 0
    private var wasAboveHighWatermark = false
    private var readingPaused = false
    private var closeWhenFlushed = false
    public private(set) var isClosed = false
    /// Bytes asked of each read(2); they land straight in the decoder's buffer.
    private let readSize: Int

    /// Whether `send(spliced:)` may be used: `enableSplicing()` found `writeFD` a pipe.
    public private(set) var acceptsSplices = false
    /// A relay's choice for each big frame at the head of the stream (see `SplicedFrame`):
    /// true when it queued the frame, spliced, on the connection it forwards to; false to
    /// have it read and delivered as usual.
    public var spliceFrame: ((SplicedFrame) -> Bool)?
    /// The frame at the head of our stream that another connection is splicing out: we
    /// read nothing, and keep our descriptor open, until it is done.
    private var lent: SplicedFrame?
    /// Peek at the next frame's header: a big frame came lately, so the next may be one.
    /// (After a run of small frames we don't: an interactive command's replies pay no
    /// extra call.)
    private var peekNext = false
    /// Small frames peeked in a row since the last big one.
    private var smallFramesPeeked = 0
    /// How many small frames in a row end peeking: they are read one at a time while it
    /// lasts, so a big frame behind them isn't swallowed by a read.
    private static let smallFramesBeforePeekingStops = 16

    /// What a peek at the next frame's header decided.
    private enum PeekOutcome {
        /// The frame is being spliced out by another connection.
        case spliced
        /// A small frame: read just its `count` bytes, so the next frame can be peeked too.
        case readExactly(Int)
        /// Read as usual (nothing peeked, or not spliceable: a big frame only partly here).
        case readAsUsual
    }

    /// `readFD` and `writeFD` may be the same descriptor (a socket). They are set
    /// non-blocking and closed by `close()` unless `ownsDescriptors` is false.
    public let ownsDescriptors: Bool

    public init(reactor: Reactor, readFD: Int32, writeFD: Int32, name: String,
                ownsDescriptors: Bool = true, maxPayloadLength: Int = Frame.maxPayloadLength,
                readBufferSize: Int = 256 * 1024) {
        self.reactor = reactor
        self.readFD = readFD
        self.writeFD = writeFD
        self.name = name
        self.ownsDescriptors = ownsDescriptors
        self.decoder = FrameDecoder(maxPayloadLength: maxPayloadLength)
        // Control-only links (the registry's, one per session) pass a small size: the
        // decoder's buffer is resident memory for as long as the connection lives.
        self.readSize = max(4096, readBufferSize)
        setNonBlocking(readFD)
        if writeFD != readFD { setNonBlocking(writeFD) }
    }

    public convenience init(reactor: Reactor, socket: Int32, name: String) {
        self.init(reactor: reactor, readFD: socket, writeFD: socket, name: name)
    }

    /// Starts reading. Call once, after setting the callbacks.
    public func start() {
        guard !isClosed, readRegistration == nil else { return }
        registerForReading()
    }

    private func registerForReading() {
        readRegistration = reactor.register(fd: readFD, interest: readInterest) { [weak self] readiness in
            self?.handleReadable(readiness)
        }
    }

    private var readInterest: Interest { readingPaused || lent != nil ? .none : .readable }

    // MARK: Writing

    public func send(_ frame: Frame) {
        send(bytes: frame.encoded())
    }

    public func send(type: FrameType, channel: UInt32, payload: [UInt8] = []) {
        send(Frame(type: type, channel: channel, payload: payload))
    }

    /// Queues already-encoded frame bytes (relays forward frames without re-encoding).
    public func send(bytes: [UInt8]) {
        guard !isClosed, !closeWhenFlushed, !bytes.isEmpty else { return }
        enqueue(bytes)
        if writeRegistration == nil && corks == 0 {
            flush()
        }
    }

    /// Sends everything `body` queues in one writev(2) instead of one per frame: frames
    /// that answer the same event (an invoke's `started` and its `commandStarted` record)
    /// then wake the peer — and every hop after it — once.
    public func batchingWrites<T>(_ body: () throws -> T) rethrows -> T {
        corks += 1
        defer { uncork() }
        return try body()
    }

    /// Holds everything sent from now on for up to `seconds`, or until
    /// `releaseHeldWrites()`, then sends it in one writev(2). For answers that are usually
    /// followed at once by more (a short command's `started`, its output and its end):
    /// one write, one wake-up per hop, one SSH packet, instead of several. A hold is let
    /// go early once `holdLimitBytes` are queued, so streams are not slowed.
    public func holdWrites(for seconds: Double) {
        guard !isClosed, holdTimer == nil else { return }
        corks += 1
        holdTimer = reactor.schedule(after: seconds) { [weak self] in self?.releaseHeldWrites() }
    }

    /// Ends a hold (if any): what it kept goes out now.
    public func releaseHeldWrites() {
        guard let timer = holdTimer else { return }
        holdTimer = nil
        reactor.cancel(timer)
        uncork()
    }

    public static let holdLimitBytes = 64 << 10
    private var holdTimer: TimerHandle?

    private func uncork() {
        corks -= 1
        if corks == 0 && writeRegistration == nil && !isClosed && outboxHead < outbox.count { flush() }
    }

    /// Queues a frame that arrived as wire bytes (see `onWireFrame`), as it is.
    public func send(_ wire: WireFrame) {
        send(bytes: wire.bytes)
    }

    /// Queues a frame given as its encoded head and a body kept elsewhere (a journaled
    /// record's bytes): both go out in one writev(2), and the body is never copied here.
    public func send(head: [UInt8], body: [UInt8]) {
        guard !isClosed, !closeWhenFlushed else { return }
        enqueue(head)
        enqueue(body)
        if writeRegistration == nil && corks == 0 {
            flush()
        }
    }

    private func enqueue(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        enqueue(Outgoing(bytes: bytes), count: bytes.count)
    }

    private func enqueue(_ entry: Outgoing, count: Int) {
        outbox.append(entry)
        pendingWriteBytes += count
        if pendingWriteBytes > highWatermark { wasAboveHighWatermark = true }
        if holdTimer != nil && pendingWriteBytes >= Self.holdLimitBytes { releaseHeldWrites() }
    }

    // MARK: Splicing (relays)

    /// Lets this connection take frames by splice(2) (`send(spliced:)`), if its write end
    /// is a pipe — sshd's stdout for a subsystem is. A socket can't take a splice from a
    /// socket, so anything else keeps the ordinary copy.
    public func enableSplicing() {
        acceptsSplices = isPipe(writeFD)
    }

    /// Queues a frame to be spliced out of another connection's socket, behind everything
    /// queued so far and ahead of everything queued later: frames stay whole on the wire.
    /// False (nothing queued) when this connection doesn't take splices or is closing.
    public func send(spliced frame: SplicedFrame) -> Bool {
        guard acceptsSplices, !isClosed, !closeWhenFlushed else { return false }
        enqueue(Outgoing(spliced: frame), count: frame.remaining)
        if writeRegistration == nil && corks == 0 {
            flush()
        }
        return true
    }

    /// Splices the frame at the head of the queue as far as the pipe takes it. True to go
    /// on with the queue; false when the pipe is full (writability armed) or we failed.
    private func spliceHead(_ frame: SplicedFrame) -> Bool {
        let n = frame.move(to: writeFD)
        if n > 0 {
            frame.remaining -= n
            pendingWriteBytes -= n
            if frame.remaining == 0 {
                outbox[outboxHead] = Outgoing(bytes: [])
                outboxHead += 1
                frame.finish(complete: true)
            }
            return true
        }
        let error = n < 0 ? errno : EIO  // 0: the source ended inside a frame it held whole
        if error == EINTR { return true }
        if error == EAGAIN || error == EWOULDBLOCK {
            armWritable()
            return false
        }
        if error == EINVAL && !frame.isStarted, let bytes = frame.readRemaining() {
            // This kernel can't splice these two: copy, and stop taking splices.
            acceptsSplices = false
            outbox[outboxHead] = Outgoing(bytes: bytes)
            frame.finish(complete: true)
            return true
        }
        finish(.ioError(SystemError("splice to \(name)", errno: error)))
        return false
    }

    /// At a frame boundary, after a big frame: peeks at the next frame's header and, if it
    /// is big and all of it is in the socket's queue, offers it to `spliceFrame`. Once it
    /// is taken, reading waits for `spliceFinished`.
    private func offerNextFrameForSplicing(_ spliceFrame: (SplicedFrame) -> Bool) -> PeekOutcome {
        let headLength = 4 + Frame.headerLength
        let head = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: headLength) { buffer -> [UInt8]? in
            let n = recv(readFD, buffer.baseAddress, headLength, Int32(MSG_PEEK | MSG_DONTWAIT))
            return n == headLength ? Array(buffer) : nil
        }
        guard let head else { return .readAsUsual }
        let length = Int(head[0]) << 24 | Int(head[1]) << 16 | Int(head[2]) << 8 | Int(head[3])
        // Anything odd is left to the decoder, which says what is wrong with it.
        guard length >= Frame.headerLength, length - Frame.headerLength <= decoder.maxPayloadLength,
              let type = FrameType(rawValue: head[4]) else { return .readAsUsual }
        guard length - Frame.headerLength >= SplicedFrame.threshold else {
            smallFramesPeeked += 1
            if smallFramesPeeked >= Self.smallFramesBeforePeekingStops { peekNext = false }
            return .readExactly(4 + length)
        }
        smallFramesPeeked = 0
        var queued: Int32 = 0
        guard ioctl(readFD, UInt(FIONREAD), &queued) == 0, Int(queued) >= 4 + length else { return .readAsUsual }
        let channel = UInt32(head[5]) << 24 | UInt32(head[6]) << 16 | UInt32(head[7]) << 8 | UInt32(head[8])
        // Strongly: a connection closed meanwhile still closes its descriptor afterwards.
        // (The cycle ends when the frame finishes, which its destination always makes it.)
        let frame = SplicedFrame(type: type, channel: channel, count: 4 + length, source: readFD) { complete in
            self.spliceFinished(complete: complete)
        }
        lent = frame
        if let readRegistration { reactor.update(readRegistration, interest: .none) }
        guard spliceFrame(frame) else {
            lent = nil
            if let readRegistration { reactor.update(readRegistration, interest: readInterest) }
            return .readAsUsual
        }
        return .spliced
    }

    /// The frame we lent is out (or its destination closed): read again.
    private func spliceFinished(complete: Bool) {
        guard let frame = lent else { return }
        lent = nil
        if isClosed {
            if ownsDescriptors { closeDescriptors() }  // kept open for the splice
            return
        }
        if !complete && frame.isStarted {
            // Its tail is still in our stream and can't be read as frames.
            finish(.ioError(SystemError("relay of a frame from \(name)", errno: EPIPE)))
            return
        }
        if let readRegistration {
            reactor.update(readRegistration, interest: readInterest)
        } else if !closeWhenFlushed {
            registerForReading()  // it was dropped at a hang-up while we waited
        }
    }

    /// Sends an error frame, then closes once everything queued has been written.
    public func fail(channel: UInt32 = 0, _ body: ErrorBody) {
        send(ControlCodec.errorFrame(channel: channel, body))
        closeAfterFlush()
    }

    /// True when queued output is above the high watermark: producers should hold off.
    public var isBackedUp: Bool { pendingWriteBytes > highWatermark }

    private func flush() {
        while outboxHead < outbox.count {
            if let frame = outbox[outboxHead].spliced {
                guard spliceHead(frame) else { return }
                continue
            }
            let n = writeQueued()
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    armWritable()
                    return
                }
                finish(.ioError(SystemError.last("write to \(name)")))
                return
            }
            consume(n)
        }
        outbox.removeAll(keepingCapacity: true)
        outboxHead = 0
        disarmWritable()
        if wasAboveHighWatermark && pendingWriteBytes <= lowWatermark {
            wasAboveHighWatermark = false
            onDrained()
        }
        if closeWhenFlushed { finish(.local) }
    }

    /// Chunks one writev(2) takes at most: frames queued back to back (a record's head and
    /// body, a burst of small frames) cost one system call.
    private static let maxChunksPerWrite = 16

    /// Writes from the head of the queue; returns what writev(2) returned.
    private func writeQueued() -> Int {
        var last = outboxHead + 1
        while last < min(outbox.count, outboxHead + Self.maxChunksPerWrite) && outbox[last].spliced == nil { last += 1 }
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: last - outboxHead) { vectors in
            gather(from: outboxHead, to: last, into: vectors, filled: 0)
        }
    }

    /// Pins each chunk's bytes (nested, so every pointer stays valid) and writes them all.
    private func gather(from index: Int, to last: Int, into vectors: UnsafeMutableBufferPointer<iovec>,
                        filled: Int) -> Int {
        if index == last {
            return filled == 1
                ? write(writeFD, vectors[0].iov_base, vectors[0].iov_len)
                : writev(writeFD, vectors.baseAddress, Int32(filled))
        }
        return outbox[index].bytes.withUnsafeBytes { raw in
            let skip = index == outboxHead ? headOffset : 0
            vectors[filled] = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + skip),
                                    iov_len: raw.count - skip)
            return gather(from: index + 1, to: last, into: vectors, filled: filled + 1)
        }
    }

    /// `n` bytes from the head of the queue were written.
    private func consume(_ written: Int) {
        var n = written
        pendingWriteBytes -= n
        while n > 0 {
            let remaining = outbox[outboxHead].bytes.count - headOffset
            if n < remaining {
                headOffset += n
                return
            }
            n -= remaining
            outbox[outboxHead] = Outgoing(bytes: [])
            outboxHead += 1
            headOffset = 0
        }
    }

    private func armWritable() {
        if outboxHead > 64 {
            outbox.removeFirst(outboxHead)
            outboxHead = 0
        }
        if wasAboveHighWatermark && pendingWriteBytes <= lowWatermark {
            wasAboveHighWatermark = false
            onDrained()
        }
        guard writeRegistration == nil, !isClosed else { return }
        writeRegistration = reactor.register(fd: writeFD, interest: .writable) { [weak self] readiness in
            guard let self else { return }
            if readiness.contains(.error) && !readiness.contains(.writable) {
                self.finish(.ioError(SystemError("write to \(self.name)", errno: EPIPE)))
                return
            }
            self.flush()
        }
    }

    private func disarmWritable() {
        if let registration = writeRegistration {
            reactor.unregister(registration)
            writeRegistration = nil
        }
    }

    // MARK: Reading

    public func pauseReading() {
        readingPaused = true
        if let registration = readRegistration { reactor.update(registration, interest: .none) }
    }

    public func resumeReading() {
        readingPaused = false
        if let registration = readRegistration { reactor.update(registration, interest: readInterest) }
    }

    private func handleReadable(_ readiness: Readiness) {
        guard !isClosed else { return }
        if lent != nil {
            // The next bytes are a frame being spliced out. A hang-up waits until it is:
            // register again then (`spliceFinished`) and read the rest as usual.
            if let registration = readRegistration { reactor.unregister(registration) }
            readRegistration = nil
            return
        }
        if readingPaused && !readiness.contains(.readable) {
            drainAfterHangup()
            return
        }
        // Read a bounded amount per wakeup so one busy peer can't starve the loop.
        for _ in 0..<4 {
            var size = readSize
            if peekNext, let spliceFrame, decoder.bufferedByteCount == 0 {
                switch offerNextFrameForSplicing(spliceFrame) {
                case .spliced:
                    if lent != nil || isClosed || readingPaused { return }
                    continue  // already out: look at the next one
                case .readExactly(let count):
                    size = count
                case .readAsUsual:
                    break
                }
            }
            let n = decoder.append(readingUpTo: size) { readInto($0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { break }
                finish(.ioError(SystemError.last("read from \(name)")))
                return
            }
            if n == 0 {
                if decoder.hasPartialFrame {
                    let error = ProtocolError.truncatedAtEOF(decoder.bufferedByteCount)
                    finish(.protocolError(error))
                } else {
                    finish(.endOfStream)
                }
                return
            }
            deliverFrames()
            if isClosed || readingPaused || n < decoder.lastOffered { break }
        }
    }

    /// One read from `readFD`: read(2), or the `reader` that replaces it.
    private func readInto(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        if let reader { return reader(readFD, buffer) }
        return read(readFD, buffer.baseAddress!, buffer.count)
    }

    /// The peer hung up (or the descriptor failed) while reading was paused. Nothing more
    /// can arrive, so the pause protects nothing any more — and the reactor drops a
    /// registration after a hangup-only report, so this is the last call we get. Read what
    /// the kernel still holds, deliver every frame (the peer's last acks and stdin are not
    /// lost), then close.
    private func drainAfterHangup() {
        if let registration = readRegistration { reactor.unregister(registration) }
        readRegistration = nil
        reading: while true {
            let n = decoder.append(readingUpTo: readSize) { readInto($0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { break reading }
                finish(.ioError(SystemError.last("read from \(name)")))
                return
            }
            if n == 0 { break reading }
        }
        while !isClosed {
            do {
                guard try deliverNextFrame() else { break }
            } catch {
                protocolFailure(error)
                return
            }
        }
        guard !isClosed else { return }
        if decoder.hasPartialFrame {
            finish(.protocolError(ProtocolError.truncatedAtEOF(decoder.bufferedByteCount)))
        } else {
            finish(.endOfStream)
        }
    }

    /// Decodes one frame and hands it to `onWireFrame` or `onFrame`; false if none is whole.
    private func deliverNextFrame() throws(ProtocolError) -> Bool {
        if let onWireFrame {
            guard let wire = try decoder.nextWire() else { return false }
            if spliceFrame != nil && wire.payloadCount >= SplicedFrame.threshold {
                peekNext = true
                smallFramesPeeked = 0
            }
            onWireFrame(wire)
        } else {
            guard let frame = try decoder.next() else { return false }
            onFrame(frame)
        }
        return true
    }

    /// `batchingWrites` over several connections at once.
    public static func batchingWrites(of connections: [FrameConnection], _ body: () -> Void) {
        for connection in connections { connection.corks += 1 }
        defer { for connection in connections { connection.uncork() } }
        body()
    }

    /// Wraps the delivery of the frames from one read, if set: a relay passes
    /// `batchingWrites` of the connection it forwards to, so the frames one read brought
    /// leave in one write.
    public var deliveryScope: ((() -> Void) -> Void)?

    private func deliverFrames() {
        if let deliveryScope {
            deliveryScope { self.deliverEachFrame() }
        } else {
            deliverEachFrame()
        }
    }

    private func deliverEachFrame() {
        while !isClosed {
            do {
                guard try deliverNextFrame() else { return }
                if readingPaused { return }
            } catch {
                // Say what was wrong, then stop reading this stream: nothing after a bad
                // frame can be trusted to be aligned.
                protocolFailure(error)
                return
            }
        }
    }

    /// Frames still buffered after `pauseReading()` are delivered on resume.
    public func deliverBufferedFrames() {
        if !readingPaused { deliverFrames() }
    }

    /// Answers a protocol violation with an error frame and closes.
    public func protocolFailure(_ error: ProtocolError) {
        guard !isClosed else { return }
        if let registration = readRegistration {
            reactor.unregister(registration)
            readRegistration = nil
        }
        send(ControlCodec.errorFrame(channel: 0, ErrorBody(error.code, error.description)))
        pendingFailure = error
        closeAfterFlush()
    }
    private var pendingFailure: ProtocolError?

    // MARK: Closing

    /// Closes once queued output is written.
    public func closeAfterFlush() {
        guard !isClosed else { return }
        closeWhenFlushed = true
        if let registration = readRegistration {
            reactor.unregister(registration)
            readRegistration = nil
        }
        if pendingWriteBytes == 0 { finish(.local) }
    }

    /// Closes now, dropping queued output.
    public func close() {
        finish(.local)
    }

    private func closeDescriptors() {
        Glibc.close(readFD)
        if writeFD != readFD { Glibc.close(writeFD) }
    }

    private func finish(_ reason: CloseReason) {
        guard !isClosed else { return }
        isClosed = true
        if let registration = readRegistration { reactor.unregister(registration) }
        disarmWritable()
        readRegistration = nil
        let abandoned = outbox[outboxHead...].compactMap(\.spliced)
        outbox.removeAll()
        pendingWriteBytes = 0
        // A descriptor lent to a splice closes when the splice is done with it.
        if ownsDescriptors && lent == nil { closeDescriptors() }
        for frame in abandoned { frame.finish(complete: false) }
        if case .local = reason, let failure = pendingFailure {
            onClose(.protocolError(failure))
        } else {
            onClose(reason)
        }
    }
}

extension FrameConnection {
    /// One entry of the outbox: bytes to write, or a frame to splice (then `bytes` is empty).
    struct Outgoing {
        var bytes: [UInt8] = []
        var spliced: SplicedFrame?
    }
}

public func setNonBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL)
    if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
}

public func setBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL)
    if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
}

/// 1 MiB: the most an unprivileged process may give a pipe (/proc/sys/fs/pipe-max-size).
public let largePipeCapacity: Int32 = 1 << 20

/// Grows the pipe behind `fd` (either end) to `bytes`, best effort; a descriptor that is
/// not a pipe is left alone. Pages are allocated only as data waits in it.
public func setPipeCapacity(_ fd: Int32, _ bytes: Int32 = largePipeCapacity) {
    _ = fcntl(fd, 1031 /* F_SETPIPE_SZ, not exported by Glibc's module */, bytes)
}

/// The capacity of the pipe behind `fd` (either end), nil if it is not a pipe.
public func pipeCapacity(_ fd: Int32) -> Int? {
    let bytes = fcntl(fd, 1032 /* F_GETPIPE_SZ, not exported by Glibc's module */)
    return bytes > 0 ? Int(bytes) : nil
}

public func setCloseOnExec(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFD)
    if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
}
