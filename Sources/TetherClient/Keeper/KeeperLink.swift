import CTetherPosix
import TetherIO
import TetherProtocol
import TetherSSH

/// What makes two CLI requests share a link: the same computer name, the same resolved
/// ssh settings, the same client identity. (The connect timeout is left out: it only
/// matters while connecting, and a warm link is worth more than a different timeout; the
/// gateway socket likewise.)
struct KeeperLinkKey: Hashable, Sendable {
    var destination: String
    var target: KeeperTarget
    var clientID: String
    var clientHost: String

    init(_ open: KeeperOpen) {
        destination = open.destination
        target = open.target
        target.connectTimeout = nil
        // Only a way in, learned from an earlier hello: the same host either way.
        target.gatewaySocket = nil
        clientID = open.hello.clientID ?? ""
        clientHost = open.hello.clientHost ?? ""
    }
}

/// One warm SSH connection (one `tether` subsystem channel) to one host, shared by the
/// CLI streams of one client. Loop-confined.
///
/// The keeper does the Tether handshake itself and keeps the host's hello; each CLI's
/// frames are relayed with their request ids and channel numbers mapped onto the link's
/// own (request ids: CLI id ↔ link id; channels: CLI N ↔ link M). Output, stdin and acks
/// cross with only the channel field of their header rewritten — their payloads are never
/// parsed. Control frames (requests, responses, events) are small, and the few the
/// keeper must understand (attach, detach, takenOver) are decoded.
final class KeeperLink {
    enum Phase {
        case connecting
        case ready
        case closed
    }

    enum Outcome {
        case ready(notices: [String])
        case failed(KeeperFailure)
        case fallback(String, keys: [String], question: LoginQuestion? = nil)
    }

    // State below is internal, not private, only for KeeperLink+Relay.swift.

    /// Where a request's answer goes.
    struct PendingRequest {
        enum Purpose {
            /// Any request of a CLI: the answer goes back to it.
            case relay
            /// An attach (or jobs bind): a failure answer ends the channel, any other attaches it.
            case attach
            /// A CLI's own detach: the answer ends the channel.
            case detach
            /// The keeper's detach for a CLI that went away: the answer is swallowed.
            case cleanup
            /// The keeper's liveness check before reusing a quiet link.
            case keepalive
            /// A ping of the link's own liveness watch: any answer will do.
            case heartbeat
        }
        var client: Int
        var clientRequestID: UInt32
        var clientChannel: UInt32
        var linkChannel: UInt32
        var purpose: Purpose
    }

    enum ChannelRoute {
        /// Link channel M is the CLI's channel N.
        case client(number: Int, channel: UInt32)
        /// The CLI went away; the keeper's detach is on its way. Output is dropped (it
        /// stays journaled on the host: nothing acknowledged it).
        case cleaningUp
    }

    let key: KeeperLinkKey
    let open: KeeperOpen
    private let reactor: Reactor
    let log: KeeperLog
    private let persist: Double
    let connection: SSHConnection
    private let passphrases: PassphraseWanted
    private(set) var phase = Phase.connecting
    /// The host's hello payload, exactly as it came: every CLI gets it as its answer.
    private(set) var hostHelloPayload: [UInt8] = []
    /// The host's gateway socket, as its hello named it.
    private(set) var hostGateway: String?
    /// The protocol version the link's hello settled on; a CLI must speak it too.
    private(set) var protocolVersion = tetherOldestProtocolVersion
    private var notices: [String] = []
    private var waiters: [(Outcome) -> Void] = []
    private var decoder = FrameDecoder()
    private var handshakeTimer: TimerHandle?
    private var idleTimer: TimerHandle?
    private var keepaliveTimer: TimerHandle?
    private var keepaliveWaiters: [(Bool) -> Void] = []
    /// Notices a link that went silent while it is up (ServerAliveInterval).
    private var liveness: LivenessWatch?

    var clients: [Int: KeeperClient] = [:]
    var pending: [UInt32: PendingRequest] = [:]
    var routes: [UInt32: ChannelRoute] = [:]
    /// Link channels whose CLI already sent `detach`: no second one when the CLI leaves.
    var detaching = Set<UInt32>()
    var nextRequestID: UInt32 = 1
    var nextChannel: UInt32 = 1

    /// CLIs whose sockets are backed up (for `--status`): each waits on its own windows;
    /// the link goes on reading for the others.
    var slowClients = Set<Int>()
    /// The SSH channel's queue is over the high watermark: no CLI of this link is read.
    var writeBackedUp = false

    let startedAt = Reactor.now()
    private var readyAt: UInt64 = 0
    private var lastHeard = Reactor.now()
    private var lastClientLeft = Reactor.now()
    private(set) var opens = 0

    /// Called once when the link is over (failed, lost, idle or stopped).
    var onClosed: (KeeperLink) -> Void = { _ in }

    static let writeHighWatermark = 4 << 20

    init(open: KeeperOpen, reactor: Reactor, log: KeeperLog, persist: Double) {
        self.key = KeeperLinkKey(open)
        // Passphrases go to the login only; the link keeps its open request without them.
        self.passphrases = PassphraseWanted(given: open.passphrases ?? [:], logins: open.logins)
        var open = open
        open.passphrases = nil
        open.logins = nil
        self.open = open
        self.reactor = reactor
        self.log = log
        self.persist = persist
        self.connection = SSHConnection(reactor: reactor, target: open.target.sshTarget)
    }

    var destination: String { open.destination }
    var hostName: String { connection.target.displayName }
    var clientCount: Int { clients.count }
    var channelCount: Int { routes.count }
    var isReady: Bool { phase == .ready }

    /// Seconds since the host last sent anything.
    var quietSeconds: Double { Double(Reactor.now() &- lastHeard) / 1e9 }

    func status() -> KeeperStatus.Link {
        let now = Reactor.now()
        let state: String = switch phase {
        case .connecting: "connecting"
        case .ready: "ready"
        case .closed: "closed"
        }
        return KeeperStatus.Link(
            destination: destination, host: hostName, state: state, route: connection.route?.rawValue,
            clients: clients.count, opens: opens,
            channels: routes.count,
            connectedSecondsAgo: readyAt == 0 ? 0 : Double(now &- readyAt) / 1e9,
            idleSeconds: clients.isEmpty ? Double(now &- lastClientLeft) / 1e9 : 0,
            waitingForSlowClient: !slowClients.isEmpty || clients.values.contains { $0.sink?.isBlocked == true }, waitingForHost: writeBackedUp)
    }

    // MARK: Connecting

    func start() {
        connection.passphraseProvider = passphrases
        connection.hostKeyQuestion = passphrases
        connection.loginPrompter = passphrases
        connection.onNotice = { [weak self] message in
            guard let self else { return }
            if self.phase == .connecting { self.notices.append(message) }
            self.log.write("\(self.destination): \(message)")
        }
        connection.onDrained = { [weak self] in self?.linkDrained() }
        handshakeTimer = reactor.schedule(after: open.handshakeTimeout) { [weak self] in
            guard let self, self.phase == .connecting else { return }
            self.fail(KeeperFailure(.connection, "no answer from the tether subsystem within \(Int(self.open.handshakeTimeout)) s"))
        }
        log.write("\(destination): connecting to \(hostName)")
        connection.readsInto = { [weak self] read in self?.receive(read) ?? 0 }
        connection.start(
            onReady: { [weak self] in
                guard let self else { return }
                self.connection.write(Frame(type: .hello, channel: 0, payload: self.open.hello.payload()).encoded())
            },
            onBytes: { _ in },  // stdout comes through `readsInto`, into the decoder
            onClose: { [weak self] error in self?.connectionClosed(error) })
    }

    /// Calls `completion` once the link is ready (or failed). A ready link answers at once.
    func whenReady(_ completion: @escaping (Outcome) -> Void) {
        switch phase {
        case .connecting: waiters.append(completion)
        case .ready: completion(.ready(notices: []))
        case .closed: completion(.failed(KeeperFailure(.connection, "connection closed")))
        }
    }

    /// Proves a quiet link is still alive with a `ping` before a CLI is put on it: a
    /// connection that died silently (a laptop's network changed) would otherwise take
    /// the CLI's first request into a black hole.
    func checkAlive(timeout: Double, _ completion: @escaping (Bool) -> Void) {
        guard phase == .ready else { completion(false); return }
        keepaliveWaiters.append(completion)
        guard keepaliveWaiters.count == 1 else { return }
        let id = allocateRequestID()
        pending[id] = PendingRequest(client: 0, clientRequestID: 0, clientChannel: 0, linkChannel: 0, purpose: .keepalive)
        write(Frame(type: .request, channel: 0, payload: ControlCodec.request(id: id, .ping)))
        keepaliveTimer = reactor.schedule(after: timeout) { [weak self] in
            guard let self else { return }
            self.keepaliveTimer = nil
            self.log.write("\(self.destination): no answer to a keepalive within \(timeout) s; dropping the link")
            self.fail(KeeperFailure(.connection, "connection lost (no answer from the host for \(Int(timeout)) s)"))
        }
    }

    func keepaliveAnswered() {
        if let keepaliveTimer { reactor.cancel(keepaliveTimer) }
        keepaliveTimer = nil
        let waiting = keepaliveWaiters
        keepaliveWaiters.removeAll()
        waiting.forEach { $0(true) }
    }

    // MARK: CLIs joining and leaving

    /// The CLI is past its hello: relay its frames from now on.
    func add(_ client: KeeperClient) {
        clients[client.number] = client
        opens += 1
        if let idleTimer { reactor.cancel(idleTimer) }
        idleTimer = nil
        if writeBackedUp { client.connection.pauseReading() }
    }

    /// The CLI's stream ended (EOF, crash, garbage): a disconnect, never a loss. Each
    /// channel it still had is detached on the host — nothing else is sent for it: its
    /// running commands go on, and output it did not acknowledge stays in the journal for
    /// the next `receive`.
    func remove(_ client: KeeperClient) {
        guard clients.removeValue(forKey: client.number) != nil else { return }
        for linkChannel in client.channels.sorted(by: { $0.key < $1.key }).map(\.value.link) {
            routes[linkChannel] = .cleaningUp
            if detaching.contains(linkChannel) { continue }  // its answer ends the route
            let id = allocateRequestID()
            pending[id] = PendingRequest(client: 0, clientRequestID: 0, clientChannel: 0,
                                         linkChannel: linkChannel, purpose: .cleanup)
            write(Frame(type: .request, channel: linkChannel, payload: ControlCodec.request(id: id, .detach)))
        }
        client.channels.removeAll()
        clientDrained(client.number)
        if clients.isEmpty {
            lastClientLeft = Reactor.now()
            scheduleIdleClose()
            releaseIdleMemory()
        }
    }

    /// A link that streamed a lot keeps its grown buffers; an idle one shouldn't hold
    /// them (a keeper idles far longer than it streams).
    private func releaseIdleMemory() {
        if decoder.bufferedByteCount == 0 { decoder = FrameDecoder() }
        _ = tether_malloc_trim()
    }

    private func scheduleIdleClose() {
        if let idleTimer { reactor.cancel(idleTimer) }
        idleTimer = reactor.schedule(after: persist) { [weak self] in
            guard let self, self.clients.isEmpty else { return }
            self.idleTimer = nil
            self.log.write("\(self.destination): unused for \(Int(self.persist)) s; closing the link")
            self.close()
        }
    }

    /// The subsystem's stdout, read by libssh2 straight into the decoder (a big frame's
    /// own array once its header is in) rather than lent from the loop's shared buffer
    /// and copied in: one copy fewer for every byte.
    private func receive(_ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        let n = decoder.append(readingUpTo: Self.readSize, read)
        guard n > 0 else { return n }
        lastHeard = Reactor.now()
        liveness?.heard()
        // The frames of one read (a short command's answer, start, output and end arrive
        // in one SSH packet) reach each CLI in one write, not one each: one wake-up of
        // the CLI, as the subsystem does for the runspaces (`FrameConnection.deliveryScope`).
        FrameConnection.batchingWrites(of: clients.values.map(\.connection)) { deliverFrames() }
        return n
    }

    /// What one read from the channel may bring when no big frame is being assembled.
    static let readSize = 128 * 1024

    func deliverFrames() {
        while phase != .closed {
            var wire: WireFrame
            do {
                guard let next = try decoder.nextWire() else { return }
                wire = next
            } catch {
                fail(KeeperFailure(.protocolViolation, "the host sent garbage: \(error)"))
                return
            }
            if phase == .connecting {
                handshake(wire.frame)
            } else if wire.type == .record && wire.channel != 0 {
                routeRecord(&wire)
            } else {
                fromHost(wire.frame)
            }
        }
    }

    private func handshake(_ frame: Frame) {
        switch frame.type {
        case .hello:
            do {
                let (hello, version) = try Hello.answer(frame.payload)
                hostGateway = hello.gateway
                protocolVersion = version
            } catch .versionMismatch(let peer, let ours) {
                fail(KeeperFailure(.versionMismatch, HostConnection.mismatchMessage(host: peer, client: ours)))
                return
            } catch {
                fail(KeeperFailure(.protocolViolation, "the subsystem did not answer like a Tether host: \(error)"))
                return
            }
            hostHelloPayload = frame.payload
            passphrases.forget()
            phase = .ready
            readyAt = Reactor.now()
            if let handshakeTimer { reactor.cancel(handshakeTimer) }
            handshakeTimer = nil
            watchLiveness()
            let t = connection.timings
            let route = connection.route ?? .subsystem
            let via = route.rawValue + (connection.gatewayRefusal.map { ", the gateway refused: \($0)" } ?? "")
            log.write("\(destination): link ready (\(hostName) via the \(via); tcp \(Int(t.tcp)) ms, kex \(Int(t.handshake)) ms, auth \(Int(t.auth)) ms)")
            let waiting = waiters
            let said = notices
            waiters.removeAll()
            notices.removeAll()
            waiting.forEach { $0(.ready(notices: said)) }
            if clients.isEmpty { scheduleIdleClose() }
        case .error:
            let body = (try? WireJSON.decode(ErrorBody.self, from: frame.payload)) ?? ErrorBody(.internal, "unreadable error frame")
            fail(KeeperFailure(hostError: body))
        default:
            fail(KeeperFailure(.protocolViolation, "the host sent a \(frame.type) frame before its hello"))
        }
    }

    /// Pings the host after ServerAliveInterval of silence; ServerAliveCountMax pings
    /// unanswered and the link is lost — its CLIs resume on a new one. Silence doesn't
    /// count while the link can't send (the host isn't reading, e.g. a command not
    /// reading its stdin): the host may be alive and busy.
    private func watchLiveness() {
        guard let settings = connection.target.liveness else { return }
        let watch = LivenessWatch(
            reactor: reactor, settings: settings,
            probe: { [weak self] in
                guard let self, self.phase == .ready else { return }
                let id = self.allocateRequestID()
                self.pending[id] = PendingRequest(client: 0, clientRequestID: 0, clientChannel: 0, linkChannel: 0,
                                                  purpose: .heartbeat)
                self.write(Frame(type: .request, channel: 0, payload: ControlCodec.request(id: id, .ping)))
            },
            silenceCounts: { [weak self] in self?.connection.pendingWriteBytes == 0 },
            onDead: { [weak self] reason in
                guard let self else { return }
                self.log.write("\(self.destination): \(reason); dropping the link")
                self.fail(KeeperFailure(.connection, reason))
            })
        liveness = watch
        watch.start()
    }

    // MARK: Ending

    private func connectionClosed(_ error: SSHError?) {
        passphrases.forget()
        switch phase {
        case .connecting:
            if let error {
                if error.kind == .authenticationFailed, let question = passphrases.loginQuestion, passphrases.keysAsked.isEmpty {
                    log.write("\(destination): login needs a person's answer (\(question.method.rawValue)); the CLI asks")
                    finish(.fallback("\(question.method.rawValue) authentication needs a person's answer (the keeper has no terminal)",
                                     keys: [], question: question), sending: nil)
                } else if error.kind == .authenticationFailed && passphrases.wasAsked {
                    log.write("\(destination): login needs a passphrase; the CLI connects directly")
                    passphrases.forget()
                    finish(.fallback("a key needs its passphrase typed (the keeper has no terminal)",
                                     keys: passphrases.keysAsked), sending: nil)
                } else if error.kind == .hostKeyUnknown && passphrases.wasAskedAboutHostKey {
                    log.write("\(destination): unknown host key, StrictHostKeyChecking ask; the CLI connects directly")
                    finish(.fallback("the host key is unknown and StrictHostKeyChecking ask needs a person's answer (the keeper has no terminal)", keys: []), sending: nil)
                } else {
                    fail(KeeperFailure(.connection, error.message))
                }
            } else {
                fail(KeeperFailure(.connection,
                    "the connection closed before the tether subsystem answered (is the \"tether\" subsystem configured in sshd?)"))
            }
        case .ready:
            if let error {
                log.write("\(destination): link lost: \(error.message)")
                finish(.failed(KeeperFailure(.connection, error.message)),
                       sending: KeeperLinkEnd.frame(.lost, error.message, failureKind: .connection))
            } else {
                log.write("\(destination): the host closed the link")
                finish(.failed(KeeperFailure(.connection, "connection closed by the host")),
                       sending: KeeperLinkEnd.frame(.closed, "connection closed by the host"))
            }
        case .closed:
            break
        }
    }

    /// Fails the link: waiting CLIs get the failure as their open answer, relaying CLIs
    /// get it as the end of their stream.
    func fail(_ failure: KeeperFailure) {
        guard phase != .closed else { return }
        if phase == .connecting {
            log.write("\(destination): \(failure.message)")
        } else {
            log.write("\(destination): link failed: \(failure.message)")
        }
        finish(.failed(failure), sending: KeeperLinkEnd.frame(.lost, failure.message, failureKind: failure.kind))
    }

    /// Closes cleanly (idle, or the keeper stops): CLIs still on it hear "closed".
    func close() {
        guard phase != .closed else { return }
        log.write("\(destination): closing the link")
        finish(.failed(KeeperFailure(.connection, "the tether keeper closed the connection")),
               sending: KeeperLinkEnd.frame(.closed, "connection closed by the tether keeper"))
    }

    func finish(_ outcome: Outcome, sending last: Frame?) {
        guard phase != .closed else { return }
        phase = .closed
        liveness?.stop()
        liveness = nil
        for timer in [handshakeTimer, idleTimer, keepaliveTimer].compactMap({ $0 }) { reactor.cancel(timer) }
        handshakeTimer = nil
        idleTimer = nil
        keepaliveTimer = nil
        connection.close()
        // Out of the keeper's table first: a waiter that retries must get a new link.
        onClosed(self)
        let waiting = waiters
        waiters.removeAll()
        waiting.forEach { $0(outcome) }
        let checking = keepaliveWaiters
        keepaliveWaiters.removeAll()
        checking.forEach { $0(false) }
        let relaying = clients.values.sorted { $0.number < $1.number }
        clients.removeAll()
        pending.removeAll()
        routes.removeAll()
        detaching.removeAll()
        slowClients.removeAll()
        for client in relaying {
            client.linkEnded(sending: last)
        }
    }
}
