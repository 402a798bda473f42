import Glibc
import CTetherPosix
import TetherIO

/// One connection through a `TCPProxy`: the accepted client socket, the socket to the
/// target, and a byte queue per direction. Confined to the proxy's loop thread.
///
/// Each direction reads from its source only while its queue is empty, so the proxy never
/// holds more than one read (64 KiB) per direction and backpressure reaches both ends
/// unchanged. An end of file is passed on as shutdown(SHUT_WR) once the queue is written;
/// a reset or any socket error resets both sides (SO_LINGER 0), as a dying middlebox would.
final class TCPProxyLink {
    enum Side: Int { case client = 0, target = 1 }

    private enum Phase { case connecting, forwarding, closed }

    /// Bytes read from `source` waiting to be written to `sink`.
    private struct Flow {
        let source: Side
        let sink: Side
        var pending: [UInt8] = []
        var offset = 0
        /// End of file read from the source.
        var sourceEnded = false
        /// shutdown(SHUT_WR) done on the sink: this direction is finished.
        var sinkShut = false
        var hasPending: Bool { offset < pending.count }
        /// With a delay: chunks read and not yet due, each with the time it may be written.
        var delayed: [(due: UInt64, bytes: [UInt8])] = []
        var delayedBytes = 0
        var timer: TimerHandle?
    }

    /// Bytes a delayed direction holds at most (its bandwidth × delay product).
    static let delayedCapacity = 16 << 20

    private let reactor: Reactor
    private var fds: [Int32]
    private var registrations: [Registration?] = [nil, nil]
    /// Sides whose registration was dropped on a hangup/error during a stall; re-armed on
    /// resume, when poll(2) reports the (level-triggered) condition again.
    private var parked: [Bool] = [false, false]
    private var flows = [Flow(source: .client, sink: .target), Flow(source: .target, sink: .client)]
    private var phase = Phase.connecting
    private var stalled: Bool
    /// What the target sends is read but not passed on (`holdReplies`).
    private var repliesHeld = false
    /// One-way delay per direction, in nanoseconds (0: none).
    private let delay: UInt64
    private let count: (_ toTarget: Int, _ fromTarget: Int) -> Void
    private let onClosed: (TCPProxyLink) -> Void

    var isClosed: Bool { phase == .closed }

    /// Starts connecting to `targetPort` on 127.0.0.1 for the accepted `client`. Throws
    /// (the caller resets the client) if no socket can be made.
    init(reactor: Reactor, client: Int32, targetPort: UInt16, stalled: Bool, delay: Double = 0,
         count: @escaping (_ toTarget: Int, _ fromTarget: Int) -> Void,
         onClosed: @escaping (TCPProxyLink) -> Void) throws {
        self.reactor = reactor
        self.stalled = stalled
        self.delay = UInt64(max(0, delay) * 1e9)
        self.count = count
        self.onClosed = onClosed
        let target = try TCPProxyLink.startConnect(port: targetPort)
        fds = [client, target]
        for fd in fds {
            Descriptors.setNonBlocking(fd)
            _ = tether_tcp_nodelay(fd)  // forward small writes at once (no Nagle delay)
        }
        for side in [Side.client, .target] { arm(side) }
    }

    // MARK: Controls

    func setStalled(_ stalled: Bool) {
        guard phase != .closed, self.stalled != stalled else { return }
        self.stalled = stalled
        if !stalled {
            for side in [Side.client, .target] where parked[side.rawValue] {
                parked[side.rawValue] = false
                arm(side)
            }
        }
        updateInterests()
        if !stalled { flushBoth() }
    }

    func holdReplies() {
        repliesHeld = true
        updateInterests()
    }

    /// Closes both sockets with an RST (SO_LINGER 0): the abrupt end of a connection.
    func reset() {
        guard phase != .closed else { return }
        phase = .closed
        for side in [Side.client, .target] {
            disarm(side)
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(fds[side.rawValue], SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            close(fds[side.rawValue])
        }
        onClosed(self)
    }

    // MARK: Events

    private func handle(_ side: Side, _ readiness: Readiness) {
        guard phase != .closed else { return }
        if phase == .connecting {
            // The handshake completes even during a stall; forwarding is what stalls.
            guard side == .target else {
                if readiness.contains(.error) || readiness.contains(.hangup) { reset() }  // the client gave up
                return
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fds[1], SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { return reset() }
            phase = .forwarding
            updateInterests()
            return
        }
        if stalled {
            // A frozen network delivers nothing, not even a reset; look again on resume.
            if readiness.contains(.error) || readiness.contains(.hangup) {
                disarm(side)
                parked[side.rawValue] = true
            }
            return
        }
        if readiness.contains(.error) { return reset() }
        if readiness.contains(.hangup) {
            // POLLHUP without an error: we shut our writing half and the peer sent its FIN.
            // What it sent before is finite: take it all, then this socket is done.
            pump(from: side, toEnd: true)
            guard phase != .closed else { return }
            disarm(side)
        } else if readiness.contains(.readable) {
            pump(from: side, toEnd: false)
            guard phase != .closed else { return }
        }
        if readiness.contains(.writable) {
            advance(direction: side == .target ? 0 : 1)
            guard phase != .closed else { return }
        }
        finishIfDone()
        if phase != .closed { updateInterests() }
    }

    /// Reads what `side` sends into its flow: while the sink keeps up, or (`toEnd`) up to
    /// the end of file whatever the sink does.
    private func pump(from side: Side, toEnd: Bool) {
        let index = side.rawValue  // flow 0 reads the client, flow 1 the target
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !flows[index].sourceEnded {
            let n = buffer.withUnsafeMutableBytes { read(fds[index], $0.baseAddress, $0.count) }
            if n > 0 && delay > 0 {
                flows[index].delayed.append((Reactor.now() &+ delay, Array(buffer[0..<n])))
                flows[index].delayedBytes += n
                advance(direction: index)
                guard phase != .closed else { return }
                if flows[index].delayedBytes >= Self.delayedCapacity && !toEnd { return }
                continue
            }
            if n > 0 {
                if !flows[index].hasPending { flows[index].pending.removeAll(keepingCapacity: true); flows[index].offset = 0 }
                flows[index].pending += buffer[0..<n]
                flush(direction: index)
                guard phase != .closed else { return }
                if flows[index].hasPending && !toEnd { return }  // the sink is full: wait for it
                continue
            }
            if n == 0 {
                flows[index].sourceEnded = true
                advance(direction: index)
                return
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return }
            return reset()  // ECONNRESET and friends: pass the reset on
        }
    }

    /// Writes the flow's queue to its sink; passes an end of file on once it is empty.
    private func flush(direction index: Int) {
        guard !stalled, phase == .forwarding, !(repliesHeld && index == 1) else { return }
        let sink = fds[flows[index].sink.rawValue]
        while flows[index].hasPending {
            let offset = flows[index].offset
            let remaining = flows[index].pending.count - offset
            let n = flows[index].pending.withUnsafeBytes { send(sink, $0.baseAddress! + offset, remaining, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                flows[index].offset += n
                if index == 0 { count(n, 0) } else { count(0, n) }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            return reset()
        }
        if flows[index].sourceEnded && !flows[index].sinkShut && flows[index].delayed.isEmpty {
            flows[index].sinkShut = true
            _ = shutdown(sink, Int32(SHUT_WR))
        }
    }

    /// Writes what is due in one direction, moving delayed chunks on as their time comes.
    private func advance(direction index: Int) {
        while phase == .forwarding {
            flush(direction: index)
            guard phase == .forwarding, !stalled, !flows[index].hasPending, let next = flows[index].delayed.first else { break }
            let now = Reactor.now()
            if next.due > now {
                if flows[index].timer == nil {
                    flows[index].timer = reactor.schedule(after: Double(next.due - now) / 1e9) { [weak self] in
                        guard let self else { return }
                        self.flows[index].timer = nil
                        self.advance(direction: index)
                        self.finishIfDone()
                        if self.phase != .closed { self.updateInterests() }
                    }
                }
                break
            }
            flows[index].delayed.removeFirst()
            flows[index].delayedBytes -= next.bytes.count
            flows[index].pending = next.bytes
            flows[index].offset = 0
        }
    }

    private func flushBoth() {
        advance(direction: 0)
        if phase != .closed { advance(direction: 1) }
        finishIfDone()
        if phase != .closed { updateInterests() }
    }

    private func finishIfDone() {
        guard phase == .forwarding, flows.allSatisfy(\.sinkShut) else { return }
        phase = .closed
        for side in [Side.client, .target] {
            disarm(side)
            close(fds[side.rawValue])
        }
        onClosed(self)
    }

    // MARK: Registrations

    private func arm(_ side: Side) {
        guard registrations[side.rawValue] == nil else { return }
        registrations[side.rawValue] = reactor.register(fd: fds[side.rawValue], interest: interest(of: side)) { [weak self] readiness in
            self?.handle(side, readiness)
        }
    }

    private func disarm(_ side: Side) {
        if let registration = registrations[side.rawValue] { reactor.unregister(registration) }
        registrations[side.rawValue] = nil
    }

    private func updateInterests() {
        for side in [Side.client, .target] {
            if let registration = registrations[side.rawValue] { reactor.update(registration, interest: interest(of: side)) }
        }
    }

    private func interest(of side: Side) -> Interest {
        switch phase {
        case .closed:
            return .none
        case .connecting:
            return side == .target ? .writable : .none  // the client waits until the target answers
        case .forwarding:
            guard !stalled else { return .none }
            var interest: Interest = []
            let outgoing = flows[side.rawValue]        // the flow this side feeds
            let incoming = flows[1 - side.rawValue]    // the flow this side drains
            let room = delay > 0 ? outgoing.delayedBytes < Self.delayedCapacity : !outgoing.hasPending
            if !outgoing.sourceEnded && room { interest.insert(.readable) }
            if incoming.hasPending && !(repliesHeld && side == .client) { interest.insert(.writable) }
            return interest
        }
    }

    // MARK: Connecting

    private static func startConnect(port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, tether_sock_stream() | tether_sock_cloexec(), 0)
        guard fd >= 0 else { throw SystemError.last("socket") }
        Descriptors.setNonBlocking(fd)
        var address = TCPProxy.loopbackAddress(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        // EINPROGRESS: the handler learns the outcome from writability plus SO_ERROR.
        guard result == 0 || errno == EINPROGRESS else {
            let error = SystemError.last("connect 127.0.0.1:\(port)")
            close(fd)
            throw error
        }
        return fd
    }
}
