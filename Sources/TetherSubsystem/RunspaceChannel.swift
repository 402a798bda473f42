import Glibc
import TetherIO
import TetherProtocol

/// One client channel N bound to a session: a Unix connection of its own to the session's
/// runspace, over which the client's frames for N go unchanged and everything the runspace
/// sends comes back unchanged — except the `attached` answer, which gains the registry's
/// view of the session.
final class RunspaceChannel {
    enum Phase {
        /// Waiting for the registry's claim; the client's frames for N wait in `queued`.
        case claiming
        /// Connected to the runspace; frames flow both ways.
        case relaying(FrameConnection)
        /// Gone; nothing more is sent either way.
        case closed
    }

    let number: UInt32
    let instanceID: String
    let attachRequestID: UInt32
    let attachFrame: Frame
    private(set) var phase = Phase.claiming
    private var queued: [Frame] = []
    /// The registry's record of the session, patched into the `attached` answer.
    var session: SessionInfo?
    var tookOver = false
    private var attachAnswered = false
    private var sawRunspaceHello = false
    private var detachRequestID: UInt32?

    /// A frame for the client (channel N).
    var toClient: (Frame) -> Void = { _ in }
    /// An output record for the client, as the runspace encoded it (the hot path).
    var toClientWire: (WireFrame) -> Void = { _ in }
    /// A big output record for the client, left in the runspace's socket and spliced out
    /// of it (the hottest path); nil where the client's stream can't take splices. False
    /// when it wasn't taken (it is then read as usual).
    var toClientSpliced: ((SplicedFrame) -> Bool)?
    /// Wraps forwarding the frames of one read from the runspace (one write to the client).
    var forwardingScope: ((() -> Void) -> Void)?
    /// The channel is finished; the multiplexer forgets it.
    var onFinished: () -> Void = {}
    /// Flow control: the runspace connection's queue crossed its watermarks.
    var onBackedUp: () -> Void = {}
    var onDrained: () -> Void = {}

    init(number: UInt32, instanceID: String, attachRequestID: UInt32, attachFrame: Frame) {
        self.number = number
        self.instanceID = instanceID
        self.attachRequestID = attachRequestID
        self.attachFrame = attachFrame
    }

    var connection: FrameConnection? {
        if case .relaying(let connection) = phase { return connection }
        return nil
    }

    /// The protocol version the session's runspace speaks, as the registry recorded it
    /// (tether 0.1's registry records none: then the oldest).
    var runspaceProtocol: UInt16 { session?.protocolVersion ?? tetherOldestProtocolVersion }

    /// The answer to a request the session's runspace is too old for (one of an earlier
    /// release, started before the host was upgraded), or nil to send it. Checked only
    /// once the claim told us the session (frames queued before are checked at `open`).
    func refusal(of request: Request) -> ErrorBody? {
        guard request.requiredProtocol > tetherOldestProtocolVersion, let session else { return nil }
        return request.refusal(peer: "session '\(session.name)' (its runspace host is of an earlier release, started before the host was upgraded)",
                               speaks: runspaceProtocol)
    }

    // MARK: Client → runspace

    /// A frame from the client for this channel (already checked by the multiplexer).
    func fromClient(_ frame: Frame, detachID: UInt32?) {
        switch phase {
        case .claiming:
            queued.append(frame)
            if let detachID { detachRequestID = detachID }
        case .relaying(let connection):
            if let detachID { detachRequestID = detachID }
            connection.send(frame)
            if connection.isBackedUp { onBackedUp() }
        case .closed:
            break
        }
    }

    // MARK: Opening

    /// The registry granted the claim: connect to the runspace, say hello, and replay the
    /// attach and everything the client sent meanwhile.
    func open(reactor: Reactor, paths: HostPaths, hello: Hello, readingPaused: Bool) {
        guard case .claiming = phase else { return }
        let fd: Int32
        do {
            fd = try UnixSocket.connect(path: paths.runspaceSocket(instanceID))
        } catch {
            fail(ErrorBody(.unavailable, "session's runspace can't be reached: \(error)"))
            return
        }
        let connection = FrameConnection(reactor: reactor, socket: fd, name: "runspace \(instanceID) channel \(number)")
        connection.onWireFrame = { [weak self] wire in self?.fromRunspace(wire) }
        if toClientSpliced != nil {
            connection.spliceFrame = { [weak self] frame in self?.fromRunspace(spliced: frame) ?? false }
        }
        connection.deliveryScope = forwardingScope
        connection.onClose = { [weak self] reason in self?.runspaceClosed(reason) }
        connection.onDrained = { [weak self] in self?.onDrained() }
        phase = .relaying(connection)
        connection.start()
        if readingPaused { connection.pauseReading() }
        connection.send(type: .hello, channel: 0, payload: hello.payload())
        connection.send(attachFrame)
        let waiting = queued
        queued = []
        for frame in waiting {
            if frame.type == .request, let (id, request) = try? ControlCodec.decodeRequest(frame.payload),
               let refusal = refusal(of: request) {
                toClient(response(id, .failure(refusal)))
                continue
            }
            connection.send(frame)
        }
        if connection.isBackedUp { onBackedUp() }
    }

    /// The attach can't go ahead: answer it (and any request queued behind it) and finish.
    func fail(_ error: ErrorBody) {
        guard !attachAnswered else {
            finish(sending: ControlCodec.errorFrame(channel: number, error))
            return
        }
        attachAnswered = true
        toClient(response(attachRequestID, .failure(error)))
        for frame in queued where frame.type == .request {
            if let id = ControlCodec.requestID(of: frame.payload) {
                toClient(response(id, .failure(ErrorBody(.notAttached,
                    "channel \(number) is not attached: its attach failed (\(error.message))"))))
            }
        }
        queued = []
        finish(sending: nil)
    }

    // MARK: Runspace → client

    /// Output records — nearly all the bytes — go to the client as the runspace framed
    /// them: never decoded, never re-encoded (a runspace keeps the channel number, so the
    /// retag below is a formality). Everything else is looked at.
    private func fromRunspace(_ wire: WireFrame) {
        guard wire.type == .record, sawRunspaceHello, case .relaying = phase else {
            fromRunspace(wire.frame)
            return
        }
        if wire.channel == number {
            toClientWire(wire)
        } else {
            var retagged = wire
            retagged.channel = number
            toClientWire(retagged)
        }
    }

    /// A big frame at the head of the runspace's stream, not read yet: output records on
    /// our own channel go to the client by splice — the same bytes `fromRunspace(_: WireFrame)`
    /// would forward, without passing through us. Anything else is read and looked at.
    private func fromRunspace(spliced frame: SplicedFrame) -> Bool {
        guard frame.type == .record, frame.channel == number, sawRunspaceHello, case .relaying = phase,
              let toClientSpliced else { return false }
        return toClientSpliced(frame)
    }

    private func fromRunspace(_ frame: Frame) {
        guard case .relaying = phase else { return }
        if !sawRunspaceHello {
            if frame.type == .hello {
                do {
                    _ = try Hello.decode(frame.payload)
                    sawRunspaceHello = true
                } catch {
                    fail(ErrorBody(error.code, "session's runspace answered with a bad hello: \(error)"))
                }
                return
            }
            if frame.type != .error {
                fail(ErrorBody(.badFrame, "session's runspace sent \(frame.type) before hello"))
                return
            }
        }
        var frame = frame
        switch frame.type {
        case .error:
            // Fatal for the channel, whichever channel the runspace put it on.
            let body = (try? WireJSON.decode(ErrorBody.self, from: frame.payload))
                ?? ErrorBody(.internal, "unreadable error from the session's runspace")
            fail(body)
            return
        case .response:
            guard let id = ControlCodec.requestID(of: frame.payload) else { break }
            if id == attachRequestID && !attachAnswered {
                attachAnswered = true
                frame = patchedAttachAnswer(frame)
                if case .failure = (try? ControlCodec.decodeResponse(frame.payload))?.1 {
                    toClient(frame)
                    finish(sending: nil)
                    return
                }
            } else if id == detachRequestID {
                toClient(retagged(frame))
                finish(sending: nil)
                return
            }
        case .event:
            if case .takenOver = try? WireJSON.decode(Event.self, from: frame.payload) {
                // Another client forced the session away: the runspace detaches us.
                toClient(retagged(frame))
                finish(sending: nil)
                return
            }
        default:
            break
        }
        toClient(retagged(frame))
    }

    /// The runspace's frames keep their channel; a runspace that answered on another
    /// channel number is corrected rather than trusted to route the client's frames.
    private func retagged(_ frame: Frame) -> Frame {
        guard frame.channel != number else { return frame }
        var frame = frame
        frame.channel = number
        return frame
    }

    private func patchedAttachAnswer(_ frame: Frame) -> Frame {
        guard let (id, response) = try? ControlCodec.decodeResponse(frame.payload),
              case .attached(var info) = response else { return retagged(frame) }
        if var session {
            // The registry knows holder, settings and life state; the runspace knows
            // whether a command runs right now.
            session.busy = info.session.busy
            info.session = session
        }
        info.tookOver = tookOver
        return Frame(type: .response, channel: number, payload: ControlCodec.response(id: id, .attached(info)))
    }

    private func runspaceClosed(_ reason: CloseReason) {
        // `.local`: we closed it ourselves, and have already told the client why.
        guard case .relaying = phase, !reason.isLocal else { return }
        fail(ErrorBody(.unavailable, "session's runspace went away: \(reason)"))
    }

    // MARK: Closing

    /// Ends the channel: optionally tells the client why, closes the runspace connection.
    func finish(sending last: Frame?) {
        if case .closed = phase { return }
        let connection = self.connection
        phase = .closed
        queued = []
        if let last { toClient(last) }
        connection?.close()
        onFinished()
    }

    /// The client is gone: just close.
    func close() {
        finish(sending: nil)
    }

    fileprivate func response(_ id: UInt32, _ response: Response) -> Frame {
        Frame(type: .response, channel: number, payload: ControlCodec.response(id: id, response))
    }
}

private extension CloseReason {
    var isLocal: Bool {
        if case .local = self { return true }
        return false
    }
}
