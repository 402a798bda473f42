import Glibc
import TetherIO
import TetherProtocol

/// The registry's control connection to one runspace host: status events come in, and
/// terminate / configure / takenOver go out. Its closing is how the registry learns that a
/// runspace died, so it is kept for the runspace's whole life.
final class RunspaceControl {
    let instanceID: String
    private let connection: FrameConnection
    private let log: HostLog
    private var nextRequestID: UInt32 = 1
    private var sawHello = false
    /// The runspace said it is closed or broken: its going away is expected.
    private(set) var sawFinalStatus = false

    var onStatus: (RunspaceStatus) -> Void = { _ in }
    /// The connection ended; the argument says why, for the log and the session's reason.
    var onLost: (_ expected: Bool, _ why: String) -> Void = { _, _ in }
    /// The runspace refused our hello for its protocol version (its message), if it did:
    /// a runspace of a release that shares no protocol version with ours.
    private(set) var refusedVersion: String?
    /// The version its hello settled on: a runspace of an earlier release, left running
    /// across an upgrade, speaks its own (docs/architecture.md, "Upgrades").
    private(set) var protocolVersion: UInt16?
    /// Its release, from its hello ("tether-runspace/0.1").
    private(set) var software: String?

    /// Connects to the runspace's socket (a local connect answers at once or fails).
    /// Throws the connect error so adoption can tell "gone" from other failures.
    init(reactor: Reactor, paths: HostPaths, instanceID: String, log: HostLog) throws {
        self.instanceID = instanceID
        self.log = log
        let fd = try UnixSocket.connect(path: paths.runspaceSocket(instanceID))
        // Status events are small; one of these lives per session, so keep it lean.
        connection = FrameConnection(reactor: reactor, readFD: fd, writeFD: fd, name: "runspace \(instanceID)",
                                     readBufferSize: 16 * 1024)
        connection.onFrame = { [weak self] frame in self?.handle(frame) }
        connection.onClose = { [weak self] reason in
            guard let self else { return }
            self.onLost(self.sawFinalStatus, reason.description)
        }
    }

    func start() {
        connection.start()
        connection.send(type: .hello, channel: 0,
                        payload: Hello(role: .registry, hostname: Environment.hostName(),
                                       user: Environment.userName()).payload())
    }

    var isOpen: Bool { !connection.isClosed }

    func close() { connection.close() }

    // MARK: Orders to the runspace

    func terminate() { send(.signal(.terminate)) }

    func configure(outputBuffering: OutputBuffering?, bufferLimit: Int?, idleTimeout: Double? = nil) {
        send(.configure(outputBuffering: outputBuffering, bufferLimit: bufferLimit, idleTimeout: idleTimeout))
    }

    /// Asks the runspace to bind its socket again: a cleaner removed it (`RuntimeDirectoryGuard`).
    /// A runspace of an earlier release can't (it would only answer "bad request"): false.
    @discardableResult
    func restoreSocket() -> Bool {
        guard (protocolVersion ?? 0) >= Request.restoreSocket.requiredProtocol else { return false }
        send(.restoreSocket)
        return true
    }

    /// Asks the runspace who it is; `onDescribed` gets the answer.
    func describe() { send(.describe) }
    /// The runspace's `session` answer to `describe`.
    var onDescribed: (SessionInfo) -> Void = { _ in }

    /// Tells the runspace another client forced the session away, so it detaches the old
    /// holder's channels (they get `takenOver` from the runspace).
    func notifyTakenOver(by holder: Holder) {
        connection.send(ControlCodec.eventFrame(channel: 0, .takenOver(by: holder)))
    }

    /// Tells the runspace (and through it every attached channel) who removes it.
    func notifyRemoved(by remover: Holder) {
        connection.send(ControlCodec.eventFrame(channel: 0, .removed(by: remover)))
    }

    private func send(_ request: Request) {
        let id = nextRequestID
        nextRequestID &+= 1
        connection.send(type: .request, channel: 0, payload: ControlCodec.request(id: id, request))
    }

    // MARK: From the runspace

    private func handle(_ frame: Frame) {
        if !sawHello {
            guard frame.type == .hello else {
                if frame.type == .error {
                    logError(frame)
                    // An older or newer runspace refuses our hello: say that, not "died".
                    if let body = try? WireJSON.decode(ErrorBody.self, from: frame.payload), body.code == .versionMismatch {
                        refusedVersion = body.message
                    }
                    connection.close()
                    return
                }
                connection.fail(ErrorBody(.badFrame, "expected hello from the runspace host, got \(frame.type)"))
                return
            }
            do {
                let (hello, version) = try Hello.answer(frame.payload)
                (protocolVersion, software) = (version, hello.software)
                sawHello = true
            } catch {
                connection.fail(ErrorBody(error.code, error.description))
            }
            return
        }
        switch frame.type {
        case .event:
            guard let event = try? WireJSON.decode(Event.self, from: frame.payload) else {
                log.write("session \(instanceID): ignoring an unreadable event from its runspace")
                return
            }
            if case .status(let status) = event {
                if status.state != .running { sawFinalStatus = true }
                onStatus(status)
            }
        case .response:
            switch try? ControlCodec.decodeResponse(frame.payload) {
            case (_, .failure(let error))?:
                log.write("session \(instanceID): runspace refused a request: \(error.code.rawValue): \(error.message)")
            case (_, .session(let info))?:
                onDescribed(info)
            default:
                break
            }
        case .error:
            logError(frame)
        default:
            log.write("session \(instanceID): ignoring an unexpected \(frame.type) frame from its runspace")
        }
    }

    private func logError(_ frame: Frame) {
        let body = (try? WireJSON.decode(ErrorBody.self, from: frame.payload))?.message
            ?? String(decoding: frame.payload.prefix(200), as: UTF8.self)
        log.write("session \(instanceID): runspace sent an error: \(body)")
    }
}
