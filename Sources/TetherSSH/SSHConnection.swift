import CLibSSH2
import CTetherPosix
import Glibc
import TetherIO
import TetherProtocol

/// One SSH connection with one session channel running the subsystem. Confined to the
/// Reactor's thread: create, call and receive callbacks only there. Non-blocking libssh2,
/// driven by the shared Reactor (many connections on one loop, no thread per host).
///
/// Lifecycle: `start` → resolving → connecting → handshaking (host key checked) →
/// authenticating → opening the channel → starting the subsystem → ready → closing.
/// With `target.gatewaySocket` set, the channel is first asked straight for the host's
/// Tether gateway socket (no subsystem start, no login shell); if sshd refuses that, the
/// session channel and subsystem follow as usual.
/// Each phase calls one libssh2 function until it stops returning EAGAIN, waiting in
/// between for exactly the socket directions libssh2 asks for. The setup as a whole is
/// bounded by the connect timeout, so every failure reaches `onClose` — never a hang.
public final class SSHConnection {
    public let reactor: Reactor
    public let target: SSHTarget

    /// Asked for the passphrase of an encrypted identity file; /dev/tty by default.
    public var passphraseProvider: PassphraseProvider = TTYPassphraseProvider()
    /// Asked the questions of password and keyboard-interactive authentication; /dev/tty
    /// (or SSH_ASKPASS) by default.
    public var loginPrompter: LoginPrompter = TTYLoginPrompter()
    /// Asked about an unknown host key under StrictHostKeyChecking ask (ssh's default).
    public var hostKeyQuestion: HostKeyQuestion = TTYHostKeyQuestion()
    /// A program's own rule for a host key known_hosts does not vouch for (unknown or
    /// changed): when set, it decides instead of StrictHostKeyChecking. A @revoked key is
    /// refused whatever it says.
    public var hostKeyDecision: (@Sendable (HostKeyProblem) -> HostKeyVerdict)?
    /// Private keys held in memory, offered before the agent's and the identity files.
    public var memoryKeys: [MemoryKey] = []
    /// One-line notes for the user that are not errors (a skipped RSA key, a host key added
    /// to known_hosts). Defaults to standard error with a "tether: " prefix.
    public var onNotice: (String) -> Void = { SSHNotice.printToStandardError($0) }
    /// Called whenever queued output has been fully handed to the channel (backpressure).
    public var onDrained: () -> Void = {}
    /// The session channel's receive window: ~bandwidth × RTT; 8 MB measured best on
    /// loopback and LAN (bigger is slower with libssh2 1.10).
    public var channelWindowBytes: UInt32 = 8 << 20

    // MARK: State

    enum Phase: Equatable {
        case idle, resolving, connecting, handshaking, authenticating
        case openingGateway, openingChannel, startingSubsystem, ready, closing, closed

        var doing: String {
            switch self {
            case .idle: "starting"
            case .resolving: "resolving the host name"
            case .connecting: "connecting"
            case .handshaking: "exchanging keys (SSH handshake)"
            case .authenticating: "authenticating"
            case .openingGateway: "opening a channel to the host's Tether gateway"
            case .openingChannel: "opening the session channel"
            case .startingSubsystem: "starting the subsystem"
            case .ready: "transferring data"
            case .closing, .closed: "closing"
            }
        }
    }

    var phase = Phase.idle
    var socket: Int32 = -1
    var registration: Registration?
    var session: OpaquePointer?
    var channel: OpaquePointer?
    var authenticator: Authenticator?
    let shared: ReactorSSHState

    var onReady: (() -> Void)?
    /// The subsystem's stdout, lent in place (see `start(onReady:onBytes:onClose:)`).
    var onData: ((UnsafeRawBufferPointer) -> Void)?
    /// Set by a consumer that decodes frames (the keeper): stdout is read straight into a
    /// buffer it lends — the rest of a big frame's own array — instead of into the loop's
    /// shared buffer and copied out of it. It calls `read` once with that buffer, handles
    /// what landed there, and returns what `read` returned (bytes, 0 or a libssh2 error);
    /// `onData` is then not called for stdout.
    public var readsInto: ((_ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int)?
    var onClose: ((SSHError?) -> Void)?
    /// Runs once everything is released (after a background teardown too): for tests.
    var onFinished: (() -> Void)?

    var setupTimer: TimerHandle?
    var setupDeadline: UInt64 = 0
    var phaseStarted: UInt64 = 0
    var retryTimer: TimerHandle?
    public internal(set) var timings = SSHTimings()
    /// How the channel reached the host's Tether side; nil until ready.
    public internal(set) var route: ConnectionRoute?
    /// Why `target.gatewaySocket` was not used (sshd's answer), if it was tried and refused.
    public internal(set) var gatewayRefusal: String?

    // Connecting
    var currentAddress = ""
    /// The ProxyCommand/ProxyJump child carrying the connection.
    var proxy: ProxyProcess?
    var knownHosts: KnownHosts?
    var personSecondsCounted = 0.0
    var addresses: [SocketAddress] = []
    var connectFailures: [(address: String, errno: Int32)] = []

    // Data
    var outbound = OutboundQueue()
    /// A libssh2 send that returned EAGAIN after committing a packet: it must be called
    /// again, with the same arguments, before anything else touches the session.
    var committed: CommittedCall?
    /// The last write found the peer's window closed: wait for readable (its adjust).
    var peerWindowClosed = false
    var readingPaused = false
    /// The socket may hold bytes libssh2 has not seen: poll(2) said readable, or libssh2's
    /// last look at it did not end in an empty recv(2). While false, a read that libssh2's
    /// queue can't serve is not attempted: it would only cost a recv(2) that says EAGAIN
    /// (see `SSHConnection+Pump.swift`, "Reading").
    var socketMayHaveInput = true
    var eofRequested = false
    var eofSent = false
    var isPumping = false
    var pumpAgain = false
    var pumpScheduled = false
    /// The tail of the subsystem's stderr, quoted when the connection ends badly.
    var stderrTail = ByteTail(limit: SSHConnection.stderrTailBytes)

    // Closing
    var teardownStep = TeardownStep.finishCommitted
    var teardownTimer: TimerHandle?
    var flushBeforeClose = true
    /// The remote ended and onClose waits for the channel close (exit status).
    var owesCloseReport = false
    /// Keeps us alive through an orderly close after the owner let go.
    var keepAlive: SSHConnection?

    enum CommittedCall: Equatable {
        case write
        case read(stream: Int32)
        case sendEOF
    }

    public init(reactor: Reactor, target: SSHTarget) {
        self.reactor = reactor
        self.target = target
        self.shared = ReactorSSHState.of(reactor)
    }

    deinit {
        // Dropped without close(): free everything now, no callbacks.
        releaseTransport()
    }

    // MARK: Public API

    /// Connect (TCP with timeout + TCP_NODELAY), handshake, verify host key per policy,
    /// authenticate (agent first unless IdentitiesOnly with files; then identity files),
    /// open a session channel and start the subsystem. Then onReady; bytes from the
    /// subsystem's stdout via onData; onClose(nil) on clean EOF or after `close()`,
    /// onClose(error) on failure. Exactly one onClose, and for a failed setup within the
    /// connect timeout (time spent typing a passphrase doesn't count). Callbacks never run
    /// inside `start` itself.
    public func start(onReady: @escaping () -> Void, onData: @escaping ([UInt8]) -> Void,
                      onClose: @escaping (SSHError?) -> Void) {
        start(onReady: onReady, onBytes: { onData(Array($0)) }, onClose: onClose)
    }

    /// The same, but the bytes are lent in place — valid only during the call, in a buffer
    /// the loop's connections share: a consumer that copies them into its own buffer
    /// anyway (a frame decoder) saves a copy of everything received. Copy before doing
    /// anything that could read another connection.
    public func start(onReady: @escaping () -> Void, onBytes: @escaping (UnsafeRawBufferPointer) -> Void,
                      onClose: @escaping (SSHError?) -> Void) {
        guard phase == .idle else { return }
        SSHLibrary.initialize()
        self.onReady = onReady
        self.onData = onBytes
        self.onClose = onClose
        let timeout = target.connectTimeout ?? 10
        setupDeadline = Reactor.now() + UInt64(timeout * 1e9)
        armSetupTimer()
        enter(.resolving)
        reactor.schedule(after: 0) { [weak self] in self?.resolve() }
    }

    /// Queued; flushed as the channel window allows. Ignored once closing.
    public func write(_ bytes: [UInt8]) {
        guard phase != .closing, phase != .closed, !eofRequested else { return }
        outbound.append(bytes)
        if phase == .ready { schedulePump() }
    }

    /// Bytes queued and not yet accepted by libssh2.
    public var pendingWriteBytes: Int { outbound.byteCount }

    /// Stops delivering onData; the channel window then fills and the remote blocks.
    public func pauseReading() {
        readingPaused = true
        if phase == .ready { updateInterest() }
    }

    public func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        // Nobody watched the socket while paused.
        socketMayHaveInput = true
        tether_socket_may_have_input(socket)
        // libssh2 may already hold data read off the socket: pump, don't wait for poll.
        if phase == .ready { schedulePump() }
    }

    /// Sends EOF (the subsystem's stdin ends) once everything queued has been written.
    public func sendEOF() {
        guard !eofRequested, phase != .closing, phase != .closed else { return }
        eofRequested = true
        if phase == .ready { schedulePump() }
    }

    /// Orderly: flush what is queued, channel close, session disconnect, socket close —
    /// bounded to 2 s, in the background. onClose(nil) is delivered now if nothing was
    /// delivered yet; nothing is delivered afterwards.
    public func close() {
        switch phase {
        case .closing, .closed:
            return
        case .ready:
            deliverClose(nil)
            beginTeardown(flush: true)
        default:
            // Mid-setup: nothing worth saying goodbye to.
            deliverClose(nil)
            abort()
        }
    }

    /// True once onClose has been (or is being) delivered.
    public var isClosed: Bool { phase == .closing || phase == .closed }

    // MARK: Phases and the deadline

    func enter(_ next: Phase) {
        let now = Reactor.now()
        let elapsed = Double(now &- phaseStarted) / 1e6
        switch phase {
        case .resolving: timings.resolve = elapsed
        case .connecting: timings.tcp = elapsed
        case .handshaking: timings.handshake = elapsed
        case .authenticating: timings.auth = elapsed
        case .openingGateway, .openingChannel, .startingSubsystem: timings.channel += elapsed
        default: break
        }
        phase = next
        phaseStarted = now
    }

    func armSetupTimer() {
        if let setupTimer { reactor.cancel(setupTimer) }
        let now = Reactor.now()
        let remaining = setupDeadline > now ? Double(setupDeadline - now) / 1e9 : 0
        setupTimer = reactor.schedule(after: remaining) { [weak self] in self?.setupTimedOut() }
    }

    /// Time a person spent typing doesn't count against the network.
    func extendSetupDeadline(bySeconds seconds: Double) {
        guard seconds > 0.05 else { return }
        setupDeadline += UInt64(seconds * 1e9)
        armSetupTimer()
    }

    private func setupTimedOut() {
        setupTimer = nil
        guard phase != .ready, phase != .closing, phase != .closed else { return }
        let seconds = target.connectTimeout ?? 10
        let shown = seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
        var message = "timed out after \(shown) s while \(phase.doing)"
        if phase == .connecting {
            message = "connection timed out after \(shown) s (no answer from port \(target.port); host down or a firewall dropping packets?)"
        }
        fail(.timeout, message)
    }

    // MARK: Failing and delivering

    func fail(_ kind: SSHError.Kind, _ message: String) {
        fail(SSHError(kind, host: target.displayName, message))
    }

    func fail(_ error: SSHError) {
        guard phase != .closed else { return }
        var error = error
        let note = stderrNote
        if !note.isEmpty && (error.kind == .disconnected || error.kind == .libssh2) {
            error.message += "; the subsystem said: \(note)"
        }
        explainThroughProxy(&error)
        if phase == .closing {
            // Already closing: the owner has its onClose, or gets the exit report.
            finishTeardown()
            return
        }
        abort()
        deliverClose(error)
    }

    func deliverClose(_ error: SSHError?) {
        let callback = onClose
        onClose = nil
        onReady = nil
        onData = nil
        readsInto = nil
        callback?(error)
    }

    var stderrNote: String { stderrTail.lastLines() }

    /// Drops the connection at once: no goodbye to the server.
    func abort() {
        releaseTransport()
        phase = .closed
        let finished = onFinished
        onFinished = nil
        finished?()
        keepAlive = nil
    }

    /// Frees libssh2 state and the socket; safe to call more than once.
    func releaseTransport() {
        for timer in [setupTimer, retryTimer, teardownTimer].compactMap({ $0 }) { reactor.cancel(timer) }
        setupTimer = nil
        retryTimer = nil
        teardownTimer = nil
        if let registration { reactor.unregister(registration) }
        registration = nil
        authenticator?.releaseAgent()
        authenticator = nil
        if socket >= 0 {
            shared.quickAckSockets.remove(socket)
            // Shut down first: libssh2's free may still try to send (channel close), and it
            // must fail at once rather than block or reach a reused descriptor.
            _ = shutdown(socket, Int32(SHUT_RDWR))
        }
        if socket >= 0 {
            // Reads go to the kernel again: blocking mode below must see the shut-down
            // socket's end, and a descriptor reused later starts afresh.
            tether_socket_may_have_input(socket)
        }
        if let session {
            // Blocking mode on a shut-down socket can't wait, and free can't return EAGAIN.
            libssh2_session_set_blocking(session, 1)
            if let channel { libssh2_channel_free(channel) }
            libssh2_session_free(session)
        }
        channel = nil
        session = nil
        if socket >= 0 { Glibc.close(socket) }
        socket = -1
        releaseProxy()
        outbound.removeAll()
        committed = nil
    }

    // MARK: Waiting on the socket

    /// Registers (once) or re-targets our socket for `interest`.
    func watchSocket(_ interest: Interest) {
        if let registration {
            reactor.update(registration, interest: interest)
        } else {
            registration = reactor.register(fd: socket, interest: interest) { [weak self] readiness in
                self?.socketEvent(readiness)
            }
        }
    }

    /// After EAGAIN: wait for what libssh2 says it is blocked on.
    func waitForLibSSH2() {
        guard let session else { return }
        let directions = libssh2_session_block_directions(session)
        var interest: Interest = []
        if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { interest.insert(.readable) }
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { interest.insert(.writable) }
        if interest.isEmpty {
            // libssh2 didn't say: listen for input and look again shortly (rare).
            interest = .readable
            if retryTimer == nil {
                retryTimer = reactor.schedule(after: 0.005) { [weak self] in
                    self?.retryTimer = nil
                    self?.advance()
                }
            }
        }
        watchSocket(interest)
    }

    private func socketEvent(_ readiness: Readiness) {
        let lost = !readiness.contains(.readable) && !readiness.contains(.writable)
            && (readiness.contains(.hangup) || readiness.contains(.error))
        if phase == .connecting {
            connectCompleted()
            return
        }
        if !readiness.isDisjoint(with: [.readable, .hangup, .error]) {
            socketMayHaveInput = true
            tether_socket_may_have_input(socket)
        }
        advance()
        if lost, let registration, phase != .closed {
            // The reactor drops a registration that reported only HUP/ERR.
            reactor.unregister(registration)
            self.registration = nil
            if phase == .ready && readingPaused {
                return  // libssh2 reads what's left (then the EOF) when reading resumes.
            }
            fail(.disconnected, "connection lost while \(phase.doing)")
        }
    }

    /// Runs the current phase as far as it goes without blocking.
    func advance() {
        switch phase {
        case .handshaking: handshake()
        case .authenticating: authenticate()
        case .openingGateway: openGatewayChannel()
        case .openingChannel: openChannel()
        case .startingSubsystem: startSubsystem()
        case .ready: pump()
        case .closing: continueTeardown()
        case .idle, .resolving, .connecting, .closed: break
        }
    }
}
