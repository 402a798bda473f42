import Glibc
import TetherIO
import TetherProtocol

/// One accepted Unix connection: a subsystem relaying a client's channels, or the
/// registry's control connection. Checks the handshake, decodes frames and hands them to
/// the `Session`; bad input gets a clear error and closes this connection only.
final class PeerConnection {
    enum Role: Equatable {
        case awaitingHello
        /// A tether-subsystem relaying one client's channels (`clientID` from its hello).
        case subsystem
        /// The registry: status events out; terminate, configure, takenOver in.
        case registry
    }

    let connection: FrameConnection
    private unowned let session: Session
    private(set) var role = Role.awaitingHello
    /// The client behind a subsystem connection (its hello's `clientID`, `clientHost`).
    private(set) var clientID: String?
    private(set) var clientHost: String?
    /// When that client attached its first channel here (it held the session then).
    var attachedSince: Double?
    /// Where that client's SSH connection came from (its hello's `clientAddress`), for transcripts.
    private(set) var clientAddress: String?
    /// The protocol version negotiated in the hello: for a subsystem, what its client
    /// speaks (the subsystem offers no more), so nothing newer is sent on its channels
    /// (`Record.Kind.requiredProtocol`, `requires(protocol:…)`).
    private(set) var protocolVersion = tetherOldestProtocolVersion
    /// Channels of this connection attached to the session.
    var attachments: [UInt32: Attachment] = [:]
    /// Channels of this connection bound to the session's jobs.
    var jobChannels: [UInt32: JobChannel] = [:]
    /// The last status event sent (registry connections only send changes).
    var lastStatus: RunspaceStatus?

    init(session: Session, reactor: Reactor, fd: Int32, number: Int) {
        self.session = session
        // The registry's link stays open for the session's whole life: a big read buffer
        // would be resident in every idle runspace. 64 KiB still moves stdin in pipe-sized reads.
        connection = FrameConnection(reactor: reactor, readFD: fd, writeFD: fd, name: "runspace connection \(number)",
                                     readBufferSize: 64 * 1024)
        connection.onFrame = { [unowned self] frame in self.handle(frame) }
        connection.onClose = { [unowned self] _ in self.session.peerClosed(self) }
        connection.onDrained = { [unowned self] in self.session.peerDrained(self) }
    }

    func start() { connection.start() }

    // MARK: Sending

    func respond(channel: UInt32, id: UInt32, _ response: Response) {
        connection.send(type: .response, channel: channel, payload: ControlCodec.response(id: id, response))
    }

    func send(_ record: Record, channel: UInt32) {
        // A kind this peer's version lacks (the other streams, for tether 0.1) goes as
        // its protocol-2 equivalent, same seq.
        let record = record.kind.requiredProtocol > protocolVersion ? record.downgraded(to: protocolVersion) : record
        // The body goes out from the journal's own array (writev), not a framed copy.
        connection.send(head: record.frameHead(channel: channel), body: record.body)
    }

    func send(_ event: Event, channel: UInt32) {
        connection.send(ControlCodec.eventFrame(channel: channel, event))
    }

    /// Says why, then closes once that is written.
    func fail(_ code: ErrorCode, _ message: String) {
        connection.fail(ErrorBody(code, message))
    }

    // MARK: Receiving

    private func handle(_ frame: Frame) {
        guard role != .awaitingHello else {
            handleHello(frame)
            return
        }
        switch frame.type {
        case .hello:
            fail(.badFrame, "unexpected second hello on channel \(frame.channel)")
        case .request:
            handleRequest(frame)
        case .stdinData:
            guard role == .subsystem else { return refuse(frame) }
            session.stdinData(frame.payload, from: self, channel: frame.channel)
        case .stdinEOF:
            guard role == .subsystem else { return refuse(frame) }
            session.stdinEOF(from: self, channel: frame.channel)
        case .ack:
            do {
                let seq = try ControlCodec.decodeAck(frame.payload)
                if let jobChannel = jobChannels[frame.channel] {
                    session.acknowledgeJob(seq, on: jobChannel)
                    return
                }
                session.acknowledge(seq, on: attachments[frame.channel])
            } catch {
                fail(error.code, "bad ack on channel \(frame.channel): \(error)")
            }
        case .event:
            handleEvent(frame)
        case .error:
            // The peer gave up on a channel (0: on the whole connection).
            if frame.channel == 0 {
                connection.close()
            } else if let attachment = attachments[frame.channel] {
                session.drop(attachment)
            } else if let jobChannel = jobChannels[frame.channel] {
                session.dropJobChannel(jobChannel)
            }
        case .response, .record:
            refuse(frame)
        }
    }

    private func refuse(_ frame: Frame) {
        let who = role == .registry ? "the registry's control connection" : "a subsystem connection"
        fail(.badFrame, "unexpected \(frame.type) frame on channel \(frame.channel) from \(who) to a runspace host")
    }

    private func handleHello(_ frame: Frame) {
        let hello: Hello
        do {
            (hello, protocolVersion) = try Hello.opening(frame, from: [.subsystem, .registry]) {
                ErrorBody(.badRequest, "a runspace host serves tether-subsystem and registry connections, not a \($0.rawValue)")
            }
        } catch {
            connection.fail(error)
            return
        }
        if hello.role == .registry {
            role = .registry
        } else {
            role = .subsystem
            clientID = hello.clientID
            clientHost = hello.clientHost
            clientAddress = hello.clientAddress
        }
        connection.send(type: .hello, channel: 0, payload: Hello(
            role: .host, software: "tether-runspace/\(tetherReleaseVersion)",
            hostname: Environment.hostName(), user: Environment.userName()).payload(version: protocolVersion))
        session.peerReady(self)
    }

    private func handleEvent(_ frame: Frame) {
        guard role == .registry else { return }  // subsystems have nothing to tell us
        do {
            switch try WireJSON.decode(Event.self, from: frame.payload) {
            case .takenOver(let holder): session.takenOver(by: holder)
            case .removed(let remover): session.removed(by: remover)
            case .status: break
            }
        } catch {
            fail(error.code, "unreadable event from the registry: \(error)")
        }
    }

    private func handleRequest(_ frame: Frame) {
        let id: UInt32
        let request: Request
        do {
            (id, request) = try ControlCodec.decodeRequest(frame.payload)
        } catch {
            if let id = ControlCodec.requestID(of: frame.payload) {
                respond(channel: frame.channel, id: id, .failure(ErrorBody(error.code, "unreadable request: \(error)")))
            } else {
                fail(error.code, "unreadable request on channel \(frame.channel): \(error)")
            }
            return
        }
        let channel = frame.channel
        if case .ping = request {
            respond(channel: channel, id: id, .pong)
            return
        }
        if role == .registry {
            handleRegistryRequest(request, id: id, channel: channel)
            return
        }
        if channel == 0 {
            respond(channel: 0, id: id, .failure(ErrorBody(.badRequest,
                "\(request.kindName) on channel 0: a session's runspace serves attach, detach, invoke and signal on channels N > 0")))
            return
        }
        if case .attach(let instanceID, _, let receive) = request {
            session.attach(from: self, channel: channel, requestID: id, instanceID: instanceID, receive: receive)
            return
        }
        if case .jobs(let instanceID) = request {
            session.bindJobs(from: self, channel: channel, requestID: id, instanceID: instanceID)
            return
        }
        if let jobChannel = jobChannels[channel] {
            session.jobRequest(request, on: jobChannel, requestID: id)
            return
        }
        if request.isJobRequest {
            respond(channel: channel, id: id, .failure(ErrorBody(.notAttached,
                "channel \(channel) is not bound to the session's jobs: send jobs first")))
            return
        }
        guard let attachment = attachments[channel] else {
            let message: String
            switch request {
            case .detach, .invoke, .signal, .resize:
                message = "channel \(channel) is not attached to a session: send attach first"
            default:
                message = "\(request.kindName) goes to the registry on channel 0, not to a session's runspace"
            }
            respond(channel: channel, id: id, .failure(ErrorBody(request.isSessionRequest ? .notAttached : .badRequest, message)))
            return
        }
        switch request {
        case .detach:
            session.detach(attachment, requestID: id)
        case .invoke(let invoke):
            session.invoke(invoke, from: attachment, requestID: id)
        case .signal(let signal):
            session.signal(signal, from: attachment, requestID: id)
        case .resize(let size):
            session.resize(size, from: attachment, requestID: id)
        default:
            respond(channel: channel, id: id, .failure(ErrorBody(.badRequest,
                "\(request.kindName) goes to the registry on channel 0, not to a session's runspace")))
        }
    }

    private func handleRegistryRequest(_ request: Request, id: UInt32, channel: UInt32) {
        switch request {
        case .signal(.terminate):
            respond(channel: channel, id: id, .done)
            session.shutDown(reason: "terminated")
        case .signal(.interrupt):
            session.interruptFromRegistry()
            respond(channel: channel, id: id, .done)
        case .describe:
            respond(channel: channel, id: id, .session(session.info))
        case .configure(let outputBuffering, let bufferLimit, let idleTimeout):
            if let bufferLimit, let problem = BufferLimit.problem(bufferLimit) {
                respond(channel: channel, id: id, .failure(ErrorBody(.badRequest, problem)))
                return
            }
            if let idleTimeout { session.idleTimeout = idleTimeout }
            session.configure(outputBuffering: outputBuffering, bufferLimit: bufferLimit)
            respond(channel: channel, id: id, .done)
        case .restoreSocket:
            do {
                try session.restoreRuntimeFiles()
                respond(channel: channel, id: id, .done)
            } catch {
                respond(channel: channel, id: id, .failure(ErrorBody(.unavailable, "cannot restore the session's socket: \(error)")))
            }
        default:
            respond(channel: channel, id: id, .failure(ErrorBody(.badRequest,
                "\(request.kindName) is not a request the registry's control connection carries (signal, configure, describe and restoreSocket are)")))
        }
    }
}

extension Request {
    /// Requests a session's runspace serves on a channel bound by `jobs`.
    var isJobRequest: Bool {
        switch self {
        case .jobStart, .jobList, .jobReceive, .jobWait, .jobStop, .jobRemove: true
        default: false
        }
    }

    /// Requests a session's runspace serves on an attached channel.
    var isSessionRequest: Bool {
        switch self {
        case .attach, .detach, .invoke, .signal, .resize: true
        default: false
        }
    }
}
