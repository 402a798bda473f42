import Glibc
import TetherIO
import TetherProtocol
import TetherRegistry

/// The subsystem's connection to the registry, (re)established on demand: if the registry
/// was killed, the next request starts a new one, which re-adopts every session.
///
/// Request ids: the client's channel-0 requests keep their own ids (so a response goes
/// back byte for byte); the subsystem's own requests (claims for attaches) use ids with
/// the top bit set, which clients may not use.
final class RegistryLink {
    static let internalIDBit: UInt32 = 0x8000_0000

    private let reactor: Reactor
    private let paths: HostPaths
    private let log: HostLog
    private let hello: Hello
    private var connection: FrameConnection?
    private var sawHello = false
    /// The version the registry's hello settled on (nil until it came).
    private(set) var registryProtocol: UInt16?
    /// Relays that wait for that hello to know whether the registry speaks their version.
    private var awaitingHello: [(UInt16?) -> Void] = []
    /// Waiting for an answer, per request id (a client may reuse an id; answers to the
    /// same id come back in order).
    private var pending: [UInt32: [(Frame) -> Void]] = [:]
    private var nextInternalID: UInt32 = 1

    init(reactor: Reactor, paths: HostPaths, log: HostLog, hello: Hello) {
        self.reactor = reactor
        self.paths = paths
        self.log = log
        self.hello = hello
    }

    /// Relays a client's request payload as is; `onAnswer` gets the response frame. A
    /// request newer than the oldest protocol waits for the registry's hello and is
    /// refused if the registry (one of an earlier release, still serving after an
    /// upgrade) speaks an older version.
    func relay(_ payload: [UInt8], id: UInt32, request: Request, onAnswer: @escaping (Frame) -> Void) {
        guard request.requiredProtocol > tetherOldestProtocolVersion else {
            return send(payload, id: id, onAnswer: onAnswer)
        }
        let check = { [weak self] (version: UInt16?) in
            guard let self else { return }
            guard let version else {
                return onAnswer(RegistryLink.failureFrame(id: id, ErrorBody(.unavailable,
                    "the registry went away before its hello; nothing was sent — retry")))
            }
            if let refusal = request.refusal(peer: "the host's registry (of an earlier release, still serving after an upgrade)", speaks: version) {
                onAnswer(RegistryLink.failureFrame(id: id, refusal))
            } else {
                self.send(payload, id: id, onAnswer: onAnswer)
            }
        }
        if let registryProtocol, let connection, !connection.isClosed {
            return check(registryProtocol)
        }
        do {
            _ = try connected()
        } catch {
            return send(payload, id: id, onAnswer: onAnswer)  // answers that it is unavailable
        }
        awaitingHello.append(check)
    }

    /// Sends a request of the subsystem's own; `onAnswer` gets the decoded response (a
    /// failure if the registry can't be reached or went away).
    func request(_ request: Request, onAnswer: @escaping (Response) -> Void) {
        let id = RegistryLink.internalIDBit | nextInternalID
        nextInternalID = nextInternalID % 0x7fff_ffff + 1
        send(ControlCodec.request(id: id, request), id: id) { frame in
            switch frame.type {
            case .response:
                do {
                    onAnswer(try ControlCodec.decodeResponse(frame.payload).1)
                } catch {
                    onAnswer(.failure(ErrorBody(.internal, "unreadable answer from the registry: \(error)")))
                }
            default:
                onAnswer(.failure(RegistryLink.failureBody(from: frame)))
            }
        }
    }

    private func send(_ payload: [UInt8], id: UInt32, onAnswer: @escaping (Frame) -> Void) {
        let connection: FrameConnection
        do {
            connection = try connected()
        } catch {
            log.write("registry unavailable: \(error)")
            onAnswer(RegistryLink.failureFrame(id: id, ErrorBody(.unavailable, "\(error)")))
            return
        }
        pending[id, default: []].append(onAnswer)
        connection.send(type: .request, channel: 0, payload: payload)
    }

    private func connected() throws -> FrameConnection {
        if let connection, !connection.isClosed {
            if RegistryLink.peerHasClosed(connection.readFD) {
                // The registry died and the loop hasn't read the hangup yet: don't send
                // into a dead socket, start over now.
                connection.close()
            } else {
                return connection
            }
        }
        try paths.prepare()
        let fd = try RegistryStarter.connect(paths: paths, log: log)
        let connection = FrameConnection(reactor: reactor, socket: fd, name: "registry")
        sawHello = false
        registryProtocol = nil
        connection.onFrame = { [weak self, weak connection] frame in
            guard let self, let connection else { return }
            self.handle(frame, on: connection)
        }
        connection.onClose = { [weak self, weak connection] reason in
            guard let self, let connection else { return }
            self.lost(connection, why: reason.description)
        }
        self.connection = connection
        connection.start()
        connection.send(type: .hello, channel: 0, payload: hello.payload())
        return connection
    }

    private func handle(_ frame: Frame, on connection: FrameConnection) {
        if !sawHello {
            if frame.type == .hello, let (_, version) = try? Hello.answer(frame.payload) {
                sawHello = true
                registryProtocol = version
                let waiting = awaitingHello
                awaitingHello = []
                waiting.forEach { $0(version) }
                return
            }
            let why = frame.type == .error ? RegistryLink.failureBody(from: frame).message
                                           : "expected hello from the registry, got \(frame.type)"
            log.write("registry handshake failed: \(why)")
            connection.close()
            return
        }
        switch frame.type {
        case .response:
            guard let id = ControlCodec.requestID(of: frame.payload),
                  var waiting = pending[id], !waiting.isEmpty else {
                log.write("ignoring a registry response nobody asked for")
                return
            }
            let onAnswer = waiting.removeFirst()
            pending[id] = waiting.isEmpty ? nil : waiting
            onAnswer(frame)
        case .error:
            log.write("registry sent an error: \(RegistryLink.failureBody(from: frame).message)")
            connection.close()
        default:
            log.write("ignoring a \(frame.type) frame from the registry")
        }
    }

    /// The registry went away: every unanswered request fails, the next one reconnects.
    private func lost(_ connection: FrameConnection, why: String) {
        guard connection === self.connection else { return }
        self.connection = nil
        let unchecked = awaitingHello
        awaitingHello = []
        unchecked.forEach { $0(nil) }
        let waiting = pending
        pending = [:]
        if !waiting.isEmpty { log.write("registry connection lost with requests outstanding: \(why)") }
        for (id, handlers) in waiting {
            for onAnswer in handlers {
                onAnswer(RegistryLink.failureFrame(id: id, ErrorBody(.unavailable,
                    "the registry went away before answering (\(why)); the request may or may not have taken effect — check with list and retry")))
            }
        }
    }

    func close() {
        connection?.close()
    }

    // MARK: Helpers

    /// True if the socket's next byte is end-of-stream (a peek; reads nothing).
    static func peerHasClosed(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if n == 0 { return true }
        return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
    }

    static func failureFrame(id: UInt32, _ body: ErrorBody) -> Frame {
        Frame(type: .response, channel: 0, payload: ControlCodec.response(id: id, .failure(body)))
    }

    static func failureBody(from frame: Frame) -> ErrorBody {
        (try? WireJSON.decode(ErrorBody.self, from: frame.payload))
            ?? ErrorBody(.internal, "unreadable error frame from the registry")
    }
}
