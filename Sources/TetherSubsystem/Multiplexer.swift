import Glibc
import TetherIO
import TetherProtocol
import TetherRegistry

/// Routes one client's frames: channel 0 to the registry, each channel N > 0 to the
/// runspace it is attached to. Holds nothing worth keeping — killing it is a dropped
/// network for every session it served.
final class Multiplexer {
    private enum Phase {
        case awaitingHello
        case serving(ClientHello)
    }

    /// Who the client said it is, and the protocol version its hello settled on.
    struct ClientHello {
        var clientID: String
        var clientHost: String
        var protocolVersion: UInt16

        /// The hello this subsystem says to the registry or a runspace for the client: it
        /// offers no version newer than the client's, so they never send it what it lacks.
        func downstream(clientAddress: String? = nil) -> Hello {
            Hello(role: .subsystem, clientID: clientID, clientHost: clientHost,
                  software: "tether-subsystem/\(tetherReleaseVersion)",
                  hostname: Environment.hostName(), user: Environment.userName(),
                  clientAddress: clientAddress, newestProtocol: protocolVersion)
        }
    }

    private let reactor: Reactor
    private let paths: HostPaths
    private let log: HostLog
    private let client: FrameConnection
    private let route: ConnectionRoute
    private var phase = Phase.awaitingHello
    private var registry: RegistryLink?
    private var channels: [UInt32: RunspaceChannel] = [:]
    /// Channels whose runspace connection is backed up; stdin stays paused while any is.
    private var backedUpChannels: Set<UInt32> = []
    /// stdout is backed up: every runspace connection stays paused until it drains.
    private var clientBackedUp = false

    /// Called once with the exit status when the client link is over.
    var onFinished: (Int32) -> Void = { _ in }

    init(reactor: Reactor, paths: HostPaths, log: HostLog, client: FrameConnection, route: ConnectionRoute) {
        self.reactor = reactor
        self.route = route
        self.paths = paths
        self.log = log
        self.client = client
        client.onFrame = { [weak self] frame in self?.fromClient(frame) }
        client.onClose = { [weak self] reason in self?.clientClosed(reason) }
        client.onDrained = { [weak self] in self?.clientDrained() }
        // The frames of one read from the client (an ack and the next invoke, typically)
        // reach each runspace in one write: one wake-up there, not one per frame.
        client.deliveryScope = { [weak self] body in
            let connections = self?.channels.values.compactMap(\.connection) ?? []
            FrameConnection.batchingWrites(of: connections, body)
        }
    }

    /// "ADDRESS PORT" of the SSH client (the first two fields of sshd's SSH_CONNECTION),
    /// for the runspace's transcripts. The gateway's subsystem is started by the registry,
    /// whose environment is some earlier login's: it has no address to give.
    private var clientAddress: String? {
        guard route == .subsystem, let connection = Environment.get("SSH_CONNECTION") else { return nil }
        return connection.split(separator: " ").prefix(2).joined(separator: " ")
    }

    // MARK: Client frames

    private func fromClient(_ frame: Frame) {
        switch phase {
        case .awaitingHello:
            handshake(frame)
        case .serving(let hello):
            if frame.channel == 0 {
                fromClientOnConnection(frame, hello: hello)
            } else {
                fromClient(frame, onChannel: frame.channel, hello: hello)
            }
        }
    }

    private func handshake(_ frame: Frame) {
        let hello: Hello, version: UInt16
        do {
            (hello, version) = try Hello.opening(frame, from: [.client]) {
                ErrorBody(.badFrame, "expected hello with role client, got role \($0.rawValue)")
            }
        } catch {
            refuse(error)
            return
        }
        let identity = ClientHello(clientID: hello.clientID ?? "unidentified",
                                   clientHost: hello.clientHost ?? hello.hostname ?? "an unnamed host",
                                   protocolVersion: version)
        phase = .serving(identity)
        log.write("client \(identity.clientHost) (\(identity.clientID.prefix(8))) connected through the \(route.rawValue), \(hello.software), protocol \(version)")
        // The gateway is named even before our registry is known to run: a client that
        // finds nobody listening there later just comes in through sshd's subsystem.
        client.send(type: .hello, channel: 0,
                    payload: Hello(role: .host, software: "tether-subsystem/\(tetherReleaseVersion)",
                                   hostname: Environment.hostName(), user: Environment.userName(),
                                   gateway: paths.gatewaySocket, route: route.rawValue).payload(version: version))
        registry = RegistryLink(reactor: reactor, paths: paths, log: log, hello: identity.downstream())
    }

    /// Channel 0: requests for the registry.
    private func fromClientOnConnection(_ frame: Frame, hello: ClientHello) {
        guard frame.type == .request else {
            if frame.type == .error {
                log.write("client sent an error: \(RegistryLink.failureBody(from: frame).message)")
                client.closeAfterFlush()
                return
            }
            violation("a \(frame.type) frame on channel 0 from the client")
            return
        }
        guard let id = ControlCodec.requestID(of: frame.payload) else {
            violation("a request frame of \(frame.payload.count) bytes without a request id")
            return
        }
        if let problem = problem(withClientRequestID: id) {
            answer(id, channel: 0, .failure(problem))
            return
        }
        let request: Request
        do {
            (_, request) = try ControlCodec.decodeRequest(frame.payload)
        } catch {
            answer(id, channel: 0, .failure(ErrorBody(.badRequest, "unreadable request: \(error)")))
            return
        }
        if let refusal = request.refusal(peer: "this connection", speaks: hello.protocolVersion) {
            answer(id, channel: 0, .failure(refusal))
            return
        }
        switch request {
        case .create, .list, .claim, .release, .remove, .ping, .configurations:
            registry?.relay(frame.payload, id: id, request: request) { [weak self] answer in
                self?.client.send(answer)
            }
        case .attach, .detach, .invoke, .signal, .resize:
            answer(id, channel: 0, .failure(ErrorBody(.badRequest,
                "'\(request.kindName)' goes on a channel N > 0 (attach one first), not on channel 0")))
        case .configure:
            answer(id, channel: 0, .failure(ErrorBody(.badRequest, "'configure' is for the registry's use only")))
        case .describe:
            answer(id, channel: 0, .failure(ErrorBody(.badRequest, "'describe' is for the registry's use only")))
        case .restoreSocket:
            answer(id, channel: 0, .failure(ErrorBody(.badRequest, "'restoreSocket' is for the registry's use only")))
        case .jobs, .jobStart, .jobList, .jobReceive, .jobWait, .jobStop, .jobRemove:
            answer(id, channel: 0, .failure(ErrorBody(.badRequest,
                "'\(request.kindName)' goes on a channel N > 0 bound with jobs, not on channel 0")))
        }
    }

    /// Channel N > 0: attach, or frames for an attached session.
    private func fromClient(_ frame: Frame, onChannel number: UInt32, hello: ClientHello) {
        switch frame.type {
        case .request:
            guard let id = ControlCodec.requestID(of: frame.payload) else {
                violation("a request frame of \(frame.payload.count) bytes without a request id")
                return
            }
            let request: Request
            do {
                (_, request) = try ControlCodec.decodeRequest(frame.payload)
            } catch {
                answer(id, channel: number, .failure(ErrorBody(.badRequest, "unreadable request: \(error)")))
                return
            }
            if let refusal = request.refusal(peer: "this connection", speaks: hello.protocolVersion) {
                answer(id, channel: number, .failure(refusal))
                return
            }
            if case .jobs(let instanceID) = request {
                if let existing = channels[number] {
                    answer(id, channel: number, .failure(ErrorBody(.badRequest,
                        "channel \(number) is already bound to session \(existing.instanceID); detach it first or use another channel")))
                    return
                }
                if let problem = problem(withClientRequestID: id) {
                    answer(id, channel: number, .failure(problem))
                    return
                }
                bindJobs(frame, number: number, requestID: id, instanceID: instanceID, hello: hello)
                return
            }
            if case .attach(let instanceID, let force, _) = request {
                if let existing = channels[number] {
                    answer(id, channel: number, .failure(ErrorBody(.badRequest,
                        "channel \(number) is already attached to session \(existing.instanceID); detach it first or use another channel")))
                    return
                }
                if let problem = problem(withClientRequestID: id) {
                    answer(id, channel: number, .failure(problem))
                    return
                }
                attach(frame, number: number, requestID: id, instanceID: instanceID, force: force, hello: hello)
                return
            }
            guard let channel = channels[number] else {
                answer(id, channel: number, .failure(ErrorBody(.notAttached,
                    "channel \(number) is not attached to a session; send attach on it first")))
                return
            }
            if case .create = request {
                answer(id, channel: number, .failure(ErrorBody(.badRequest, "'create' goes on channel 0")))
                return
            }
            if let refusal = channel.refusal(of: request) {
                answer(id, channel: number, .failure(refusal))
                return
            }
            channel.fromClient(frame, detachID: request == .detach ? id : nil)
        case .stdinData, .stdinEOF, .ack:
            // Late stdin or acks for a channel that just detached or lost its runspace
            // are moot, like stdin for a command that has ended.
            channels[number]?.fromClient(frame, detachID: nil)
        case .error:
            // The client gives up on this channel.
            channels[number]?.close()
        case .hello, .response, .event, .record:
            violation("a \(frame.type) frame on channel \(number) from the client")
        }
    }

    private func problem(withClientRequestID id: UInt32) -> ErrorBody? {
        guard id & RegistryLink.internalIDBit != 0 else { return nil }
        return ErrorBody(.badRequest, "request id \(id) has the top bit set; ids 0x80000000 and up are reserved for the host")
    }

    // MARK: Attach

    /// Claims the session at the registry, then binds channel N to its runspace.
    private func attach(_ frame: Frame, number: UInt32, requestID: UInt32, instanceID: String,
                        force: Bool, hello: ClientHello) {
        let channel = makeChannel(number: number, requestID: requestID, instanceID: instanceID, frame: frame)

        let claim = { [weak self] (previousHolder: Holder?) in
            self?.registry?.request(.claim(instanceID: instanceID, force: force)) { [weak self] response in
                guard let self, self.channels[number] === channel else { return }
                switch response {
                case .session(let session):
                    channel.session = session
                    if let previousHolder, previousHolder.clientID != hello.clientID {
                        channel.tookOver = true
                    }
                    self.log.write("channel \(number): attaching to session \(session.instanceID) '\(session.name)'")
                    channel.open(reactor: self.reactor, paths: self.paths,
                                 hello: hello.downstream(clientAddress: self.clientAddress),
                                 readingPaused: self.clientBackedUp)
                case .failure(let error):
                    channel.fail(error)
                default:
                    channel.fail(ErrorBody(.internal, "unexpected answer from the registry to claim"))
                }
            }
        }
        guard force else {
            claim(nil)
            return
        }
        // Only a forced claim can take a session over; ask who held it first so the
        // `attached` answer can say whether it did.
        registry?.request(.list(SessionFilter(instanceID: instanceID))) { response in
            if case .sessions(let sessions) = response {
                claim(sessions.first?.holder)
            } else {
                claim(nil)
            }
        }
    }

    /// A channel N to a session's runspace, relaying both ways, registered under N.
    private func makeChannel(number: UInt32, requestID: UInt32, instanceID: String, frame: Frame) -> RunspaceChannel {
        let channel = RunspaceChannel(number: number, instanceID: instanceID.lowercased(),
                                      attachRequestID: requestID, attachFrame: frame)
        channel.toClient = { [weak self] frame in self?.toClient(frame) }
        channel.toClientWire = { [weak self] wire in self?.toClient(wire) }
        if client.acceptsSplices {
            channel.toClientSpliced = { [weak self] frame in self?.toClient(spliced: frame) ?? false }
        }
        channel.forwardingScope = { [weak self] body in
            if let client = self?.client { client.batchingWrites(body) } else { body() }
        }
        channel.onFinished = { [weak self, weak channel] in
            guard let self, let channel, self.channels[number] === channel else { return }
            self.channels[number] = nil
            self.channelDrained(number)
        }
        channel.onBackedUp = { [weak self] in self?.channelBackedUp(number) }
        channel.onDrained = { [weak self] in self?.channelDrained(number) }
        channels[number] = channel
        return channel
    }

    /// Binds channel N to a session's jobs: no claim (any client of the user manages
    /// them), but the registry is asked first, so an unknown, closed or broken session
    /// gets its own clear answer.
    private func bindJobs(_ frame: Frame, number: UInt32, requestID: UInt32, instanceID: String, hello: ClientHello) {
        let channel = makeChannel(number: number, requestID: requestID, instanceID: instanceID, frame: frame)
        registry?.request(.list(SessionFilter(instanceID: instanceID))) { [weak self] response in
            guard let self, self.channels[number] === channel else { return }
            guard case .sessions(let sessions) = response, let session = sessions.first else {
                if case .failure(let error) = response { return channel.fail(error) }
                return channel.fail(ErrorBody(.notFound, "no session with instance id \(instanceID) on this host"))
            }
            switch session.state {
            case .running:
                channel.session = session
                channel.open(reactor: self.reactor, paths: self.paths,
                             hello: hello.downstream(), readingPaused: self.clientBackedUp)
            case .broken:
                channel.fail(ErrorBody(.sessionBroken, "session '\(session.name)' is broken (\(session.reason ?? "no reason given")); its jobs are gone with it"))
            case .closed:
                channel.fail(ErrorBody(.sessionClosed, "session '\(session.name)' is closed (\(session.reason ?? "its shell exited")); it runs no jobs"))
            }
        }
    }

    // MARK: Sending and flow control

    private func toClient(_ frame: Frame) {
        client.send(frame)
        pauseChannelsIfBackedUp()
    }

    private func toClient(_ wire: WireFrame) {
        client.send(wire)
        pauseChannelsIfBackedUp()
    }

    private func toClient(spliced frame: SplicedFrame) -> Bool {
        guard client.send(spliced: frame) else { return false }
        pauseChannelsIfBackedUp()
        return true
    }

    private func pauseChannelsIfBackedUp() {
        if client.isBackedUp && !clientBackedUp {
            clientBackedUp = true
            for channel in channels.values { channel.connection?.pauseReading() }
        }
    }

    private func clientDrained() {
        guard clientBackedUp else { return }
        clientBackedUp = false
        for channel in channels.values {
            channel.connection?.resumeReading()
            channel.connection?.deliverBufferedFrames()
        }
    }

    private func channelBackedUp(_ number: UInt32) {
        if backedUpChannels.isEmpty { client.pauseReading() }
        backedUpChannels.insert(number)
    }

    private func channelDrained(_ number: UInt32) {
        guard backedUpChannels.remove(number) != nil, backedUpChannels.isEmpty else { return }
        client.resumeReading()
        client.deliverBufferedFrames()
    }

    private func answer(_ id: UInt32, channel: UInt32, _ response: Response) {
        toClient(Frame(type: .response, channel: channel, payload: ControlCodec.response(id: id, response)))
    }

    // MARK: Ending

    /// A bad hello: say why, then end once that is written.
    private func refuse(_ error: ErrorBody) {
        log.write("refused a client: \(error.message)")
        client.fail(error)
    }

    /// A frame no client should send: the stream can't be trusted any more.
    private func violation(_ what: String) {
        let error = ProtocolError.unexpected(what)
        log.write("closing: \(error)")
        client.protocolFailure(error)
    }

    private func clientClosed(_ reason: CloseReason) {
        for channel in Array(channels.values) { channel.close() }
        channels = [:]
        registry?.close()
        switch reason {
        case .endOfStream:
            log.write("client disconnected")
            onFinished(0)
        case .protocolError(let error):
            log.write("client sent garbage: \(error)")
            if case .truncatedAtEOF = error {
                // The stream ended inside a frame, so nothing was sent back yet; the
                // client may still be reading.
                writeNow(ControlCodec.errorFrame(channel: 0, ErrorBody(error.code, error.description)))
            }
            onFinished(2)
        case .ioError(let error):
            log.write("client connection failed: \(error)")
            onFinished(1)
        case .local:
            if case .awaitingHello = phase { onFinished(2) } else { onFinished(0) }
        }
    }

    /// Last words on stdout after the connection object is done with it.
    private func writeNow(_ frame: Frame) {
        setBlocking(client.writeFD)
        let bytes = frame.encoded()
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(client.writeFD, $0.baseAddress! + written, $0.count - written) }
            if n < 0 { if errno == EINTR { continue }; return }
            written += n
        }
    }
}
