import TetherIO
import TetherProtocol
import TetherSSH

/// What a channel (one attachment to a session) hears from its host connection.
protocol ChannelEndpoint: AnyObject {
    func deliver(_ record: Record)
    func deliver(_ event: Event)
    /// The channel is over: an error frame on it, or the whole connection ended.
    func channelFailed(_ error: TetherClientError)
    /// Sends any acknowledgement held back: called before every request and before a
    /// graceful close, so the host never learns of a request before the acks preceding it.
    func flushHeldAcks()
}

extension ChannelEndpoint {
    func flushHeldAcks() {}
}

/// The session protocol over one transport to one computer. Loop-confined.
///
/// Owns the handshake (hello both ways, version check), request ids and their answers,
/// channel numbers and the routing of frames to them, and the transport's read
/// pausing on behalf of slow consumers.
final class HostConnection {
    enum Phase {
        case connecting
        case ready
        case closed(TetherClientError?)
    }

    let reactor: Reactor
    /// The computer as the user named it (used in every message and the local list).
    let computerName: String
    let clientID: String
    private let transport: ByteTransport
    private let clientHello: Hello
    /// Big records' bodies are read into arrays of their own and become the records'
    /// bodies as they are: no copy of output between libssh2 and the consumer.
    private var decoder: FrameDecoder = {
        var decoder = FrameDecoder()
        decoder.keepsRecordBodiesApart = true
        return decoder
    }()
    private(set) var phase: Phase = .connecting
    private(set) var hostHello: Hello?
    /// The protocol version the hello settled on (the highest both sides speak).
    private(set) var protocolVersion = tetherOldestProtocolVersion
    private var readyWaiters: [(Result<Hello, TetherClientError>) -> Void] = []
    private var pending: [UInt32: (Result<Response, TetherClientError>) -> Void] = [:]
    private var nextRequestID: UInt32 = 1
    private var nextChannelNumber: UInt32 = 1
    private var channels: [UInt32: ChannelEndpoint] = [:]
    private var pausedBy = Set<ObjectIdentifier>()
    private var writableWaiters: [() -> Void] = []
    private var handshakeTimer: TimerHandle?
    private var closeTimer: TimerHandle?
    private let handshakeTimeout: Double
    /// Notices a host that went silent (a dead link without RST or FIN).
    private var liveness: LivenessWatch?
    /// Called once when the connection is over (the client forgets it then).
    var onClosed: (() -> Void)?

    /// Bytes of queued output above which writers (stdin) wait for `whenWritable`.
    static let writeHighWatermark = 2 << 20

    init(reactor: Reactor, computerName: String, transport: ByteTransport, clientHello: Hello,
         handshakeTimeout: Double) {
        self.reactor = reactor
        self.computerName = computerName
        self.transport = transport
        self.clientHello = clientHello
        self.clientID = clientHello.clientID ?? ""
        self.handshakeTimeout = handshakeTimeout
    }

    // MARK: Handshake

    func start(_ completion: @escaping (Result<Hello, TetherClientError>) -> Void) {
        readyWaiters.append(completion)
        transport.onDrained = { [weak self] in self?.drained() }
        armHandshakeTimer(after: handshakeTimeout)
        transport.readsInto = { [weak self] read in self?.receive(read) ?? 0 }
        transport.start(
            onReady: { [weak self] in
                guard let self else { return }
                self.send(Frame(type: .hello, channel: 0, payload: self.clientHello.payload()))
            },
            onData: { [weak self] bytes in self?.received(bytes) },
            onClose: { [weak self] error in self?.transportClosed(error) })
    }

    /// Bounds the handshake; time spent waiting for a person to type a passphrase or a
    /// password (on this process's terminal) is added, not counted.
    private func armHandshakeTimer(after seconds: Double) {
        let personBefore = PersonWait.seconds
        handshakeTimer = reactor.schedule(after: seconds) { [weak self] in
            guard let self, case .connecting = self.phase else { return }
            let waited = PersonWait.seconds - personBefore
            if waited > 0 {
                self.armHandshakeTimer(after: waited)
                return
            }
            self.shutdown(TetherClientError(.connection, host: self.computerName,
                "no answer from the tether subsystem within \(Int(self.handshakeTimeout)) s"))
        }
    }

    var isReady: Bool {
        if case .ready = phase { return true }
        return false
    }

    var closedError: TetherClientError? {
        if case .closed(let error) = phase {
            return error ?? TetherClientError(.connection, host: computerName, "connection closed")
        }
        return nil
    }

    // MARK: Sending

    func send(_ frame: Frame) {
        guard !isClosed else { return }
        transport.write(frame.encoded())
    }

    func send(bytes: [UInt8]) {
        guard !isClosed else { return }
        transport.write(bytes)
    }

    private var isClosed: Bool {
        if case .closed = phase { return true }
        return false
    }

    /// Sends a request on `channel` and calls `completion` with the answer. A `failure`
    /// answer becomes a `.remote` error naming this computer.
    func request(_ request: Request, channel: UInt32 = 0,
                 _ completion: @escaping (Result<Response, TetherClientError>) -> Void) {
        if let error = closedError { completion(.failure(error)); return }
        let id = nextRequestID
        nextRequestID = nextRequestID == UInt32.max ? 1 : nextRequestID + 1
        pending[id] = completion
        for endpoint in channels.values { endpoint.flushHeldAcks() }
        send(Frame(type: .request, channel: channel, payload: ControlCodec.request(id: id, request)))
    }

    var isWriteBackedUp: Bool { transport.pendingWriteBytes > Self.writeHighWatermark }

    /// Runs `body` now if the transport can take more, else once it has drained.
    func whenWritable(_ body: @escaping () -> Void) {
        if isClosed || transport.pendingWriteBytes <= Self.writeHighWatermark {
            body()
        } else {
            writableWaiters.append(body)
        }
    }

    private func drained() {
        while !writableWaiters.isEmpty && transport.pendingWriteBytes <= Self.writeHighWatermark {
            let body = writableWaiters.removeFirst()
            body()
        }
    }

    // MARK: Channels

    func openChannel(_ endpoint: ChannelEndpoint) -> UInt32 {
        var number = nextChannelNumber
        while channels[number] != nil || number == 0 { number &+= 1 }
        nextChannelNumber = number &+ 1
        channels[number] = endpoint
        return number
    }

    /// Channels open now besides channel 0 (tests check that nothing leaks).
    var openChannelCount: Int { channels.count }

    func closeChannel(_ number: UInt32) {
        channels[number] = nil
    }

    // MARK: Backpressure from consumers

    func pauseReading(for consumer: AnyObject) {
        let wasEmpty = pausedBy.isEmpty
        pausedBy.insert(ObjectIdentifier(consumer))
        if wasEmpty { transport.pauseReading() }
    }

    func resumeReading(for consumer: AnyObject) {
        guard pausedBy.remove(ObjectIdentifier(consumer)) != nil else { return }
        if pausedBy.isEmpty && !isClosed {
            transport.resumeReading()
            // Frames already decoded but not delivered stay in the decoder: deliver them.
            deliverFrames()
        }
    }

    // MARK: Receiving

    /// Bytes lent by the transport: copied into the decoder first, then handled.
    private func received(_ bytes: UnsafeRawBufferPointer) {
        liveness?.heard()
        decoder.append(bytes)
        deliverFrames()
    }

    /// The subsystem's stdout read by libssh2 straight into the decoder (a big frame's own
    /// array once its header is in), as the keeper reads its links: no copy out of the
    /// loop's shared buffer.
    private func receive(_ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        let n = decoder.append(readingUpTo: Self.readSize, read)
        guard n > 0 else { return n }
        liveness?.heard()
        deliverFrames()
        return n
    }

    /// What one read from the transport may bring when no big frame is being assembled.
    static let readSize = 128 * 1024

    /// What the decoder hands over: output records — a big one's body the very array
    /// libssh2 decrypted it into, a small one's copied out of the decoder's buffer —,
    /// everything else as a frame.
    private enum Incoming {
        case record(channel: UInt32, Record)
        case badRecord(ProtocolError)
        /// Output for a channel no longer open (a detached channel's stragglers).
        case straggler
        case frame(Frame)
    }

    private func deliverFrames() {
        while !isClosed && pausedBy.isEmpty {
            let incoming: Incoming?
            do {
                let inHandshake: Bool
                if case .connecting = phase { inHandshake = true } else { inHandshake = false }
                incoming = try decoder.next({ type, channel, payload throws(ProtocolError) -> Incoming in
                    guard type == .record, !inHandshake else {
                        return .frame(Frame(type: type, channel: channel, payload: Array(payload)))
                    }
                    return incomingRecord(channel: channel) { () throws(ProtocolError) in try Record.decode(payload) }
                }, recordBody: { channel, header, body throws(ProtocolError) -> Incoming in
                    // Output streams in: keep freed record arrays on the heap, as the CLI does.
                    StreamingHeap.configureOnceForStreaming()
                    guard !inHandshake else {
                        return .frame(Frame(type: .record, channel: channel, payload: Array(header) + body))
                    }
                    return incomingRecord(channel: channel) { () throws(ProtocolError) in
                        try Record.decode(header: header, body: body)
                    }
                })
            } catch {
                shutdown(TetherClientError(.protocolViolation, host: computerName,
                                           "the host sent garbage: \(error)"))
                return
            }
            switch incoming {
            case nil:
                return
            case .frame(let frame):
                handle(frame)
            case .record(let channel, let record):
                channels[channel]?.deliver(record)
            case .badRecord(let error):
                shutdown(TetherClientError(.protocolViolation, host: computerName, "bad output record: \(error)"))
            case .straggler:
                break
            }
        }
    }

    /// An output record for `channel`, decoded by `decode` (from the decoder's buffer, or
    /// from a body read apart) — or a straggler for a channel no longer open.
    private func incomingRecord(channel: UInt32, _ decode: () throws(ProtocolError) -> Record) -> Incoming {
        guard channels[channel] != nil else { return .straggler }
        do throws(ProtocolError) {
            return .record(channel: channel, try decode())
        } catch {
            return .badRecord(error)
        }
    }

    private func handle(_ frame: Frame) {
        if case .connecting = phase {
            handleHandshake(frame)
            return
        }
        switch frame.type {
        case .response:
            handleResponse(frame)
        case .record:
            guard let endpoint = channels[frame.channel] else { return }  // a detached channel's stragglers
            do {
                endpoint.deliver(try Record.decode(frame.payload))
            } catch {
                shutdown(TetherClientError(.protocolViolation, host: computerName, "bad output record: \(error)"))
            }
        case .event:
            guard let event = try? WireJSON.decode(Event.self, from: frame.payload) else { return }
            channels[frame.channel]?.deliver(event)
        case .error:
            let body = (try? WireJSON.decode(ErrorBody.self, from: frame.payload))
                ?? ErrorBody(.internal, "unreadable error frame")
            if frame.channel == 0 {
                shutdown(Self.error(from: body, host: computerName))
            } else if let endpoint = channels.removeValue(forKey: frame.channel) {
                endpoint.channelFailed(Self.error(from: body, host: computerName))
            }
        case .hello, .request, .stdinData, .stdinEOF, .ack:
            shutdown(TetherClientError(.protocolViolation, host: computerName,
                                       "the host sent an unexpected \(frame.type) frame"))
        }
    }

    private func handleHandshake(_ frame: Frame) {
        switch frame.type {
        case .hello:
            do {
                let (hello, version) = try Hello.answer(frame.payload)
                hostHello = hello
                protocolVersion = version
                phase = .ready
                if let timer = handshakeTimer { reactor.cancel(timer) }
                watchLiveness()
                let waiters = readyWaiters
                readyWaiters.removeAll()
                waiters.forEach { $0(.success(hello)) }
            } catch .versionMismatch(let peer, let ours) {
                shutdown(TetherClientError(.versionMismatch, host: computerName,
                    HostConnection.mismatchMessage(host: peer, client: ours)))
            } catch {
                shutdown(TetherClientError(.protocolViolation, host: computerName,
                    "the \(clientHello.role == .client ? "subsystem" : "peer") did not answer like a Tether host: \(error)"))
            }
        case .error:
            let body = (try? WireJSON.decode(ErrorBody.self, from: frame.payload))
                ?? ErrorBody(.internal, "unreadable error frame")
            shutdown(Self.error(from: body, host: computerName))
        default:
            shutdown(TetherClientError(.protocolViolation, host: computerName,
                "the host sent a \(frame.type) frame before its hello"))
        }
    }

    private func handleResponse(_ frame: Frame) {
        let id: UInt32
        let response: Response
        do {
            (id, response) = try ControlCodec.decodeResponse(frame.payload)
        } catch {
            shutdown(TetherClientError(.protocolViolation, host: computerName, "bad response: \(error)"))
            return
        }
        guard let completion = pending.removeValue(forKey: id) else { return }
        if case .failure(let body) = response {
            // A request refused for its protocol version (a feature the host, or the
            // session's runspace, is too old for) is one refusal, not a failed connection.
            completion(.failure(body.code == .versionMismatch
                ? TetherClientError(.remote(.versionMismatch), host: computerName, body.message)
                : Self.error(from: body, host: computerName)))
        } else {
            completion(.success(response))
        }
    }

    /// Pings a host that has been silent for ServerAliveInterval and declares the
    /// connection lost after ServerAliveCountMax unanswered ones — the resume takes over.
    /// Silence doesn't count while this end isn't reading (a slow consumer) or can't send
    /// (the host isn't reading our stdin): the host may be alive and waiting for us.
    private func watchLiveness() {
        guard let settings = transport.liveness else { return }
        let watch = LivenessWatch(
            reactor: reactor, settings: settings,
            probe: { [weak self] in self?.request(.ping) { _ in } },
            silenceCounts: { [weak self] in
                guard let self else { return false }
                return self.pausedBy.isEmpty && self.transport.pendingWriteBytes == 0
            },
            onDead: { [weak self] reason in
                guard let self else { return }
                self.shutdown(TetherClientError(.connectionLost, host: self.computerName, reason))
            })
        liveness = watch
        watch.start()
    }

    static func error(from body: ErrorBody, host: String) -> TetherClientError {
        switch body.code {
        case .versionMismatch:
            TetherClientError(.versionMismatch, host: host, body.message)
        case .badFrame, .frameTooLarge, .unknownFrameType, .badPayload:
            TetherClientError(.protocolViolation, host: host, body.message)
        default:
            TetherClientError(.remote(body.code), host: host, body.message)
        }
    }

    // MARK: Closing

    private func transportClosed(_ error: TetherClientError?) {
        let reason: TetherClientError?
        switch phase {
        case .connecting:
            reason = error ?? TetherClientError(.connection, host: computerName,
                "the connection closed before the tether subsystem answered (is the \"tether\" subsystem configured in sshd?)")
        case .ready:
            // After our own EOF (closeGracefully) the host closing is the expected answer.
            let expected = closeTimer != nil || pending.isEmpty && channels.isEmpty
            // An established connection that ends is *lost*, not refused: what is running
            // on the host goes on, and a resume on a new connection picks it up.
            reason = (error.map { $0.kind == .connection ? $0.as(.connectionLost) : $0 }) ?? (expected ? nil
                : TetherClientError(.connectionLost, host: computerName, "connection closed by the host"))
        case .closed:
            return
        }
        finish(reason)
    }

    /// Closes with an error: everything waiting hears it.
    func shutdown(_ error: TetherClientError) {
        guard !isClosed else { return }
        transport.close()
        finish(error)
    }

    /// Sends everything queued (acks!), ends the stream, and calls `completion` once the
    /// host has closed its side — or after `timeout`, whichever comes first.
    func closeGracefully(timeout: Double = 3, _ completion: @escaping () -> Void) {
        if isClosed { completion(); return }
        onClosedGracefully.append(completion)
        guard closeTimer == nil else { return }
        for endpoint in channels.values { endpoint.flushHeldAcks() }
        transport.sendEOF()
        closeTimer = reactor.schedule(after: timeout) { [weak self] in
            guard let self else { return }
            self.transport.close()
            self.finish(nil)
        }
    }
    private var onClosedGracefully: [() -> Void] = []

    private func finish(_ error: TetherClientError?) {
        guard !isClosed else { return }
        phase = .closed(error)
        liveness?.stop()
        liveness = nil
        if let timer = handshakeTimer { reactor.cancel(timer) }
        if let timer = closeTimer { reactor.cancel(timer) }
        let failure = error ?? TetherClientError(.connection, host: computerName, "connection closed")
        let waiters = readyWaiters
        readyWaiters.removeAll()
        waiters.forEach { $0(.failure(failure)) }
        let requests = pending
        pending.removeAll()
        for (_, completion) in requests.sorted(by: { $0.key < $1.key }) { completion(.failure(failure)) }
        let endpoints = channels
        channels.removeAll()
        for (_, endpoint) in endpoints.sorted(by: { $0.key < $1.key }) { endpoint.channelFailed(failure) }
        let writers = writableWaiters
        writableWaiters.removeAll()
        writers.forEach { $0() }
        let graceful = onClosedGracefully
        onClosedGracefully.removeAll()
        graceful.forEach { $0() }
        onClosed?()
        onClosed = nil
    }

    /// The words for a host whose answer we can't speak (it shares no version with us).
    static func mismatchMessage(host: ProtocolRange, client: ProtocolRange) -> String {
        "protocol version mismatch: the host speaks protocol \(host), this client (tether \(tetherReleaseVersion)) speaks \(client); "
            + (host.newest < client.oldest
                ? "upgrade tether-subsystem on the host to tether \(tetherRelease(introducingProtocol: client.oldest)) or later"
                : "upgrade this client (\(protocolDescription(host.oldest)) or later)")
    }
}
