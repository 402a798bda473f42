import CTetherPosix
import Glibc
import TetherIO
import TetherProtocol

/// One CLI stream inside the keeper (one accepted Unix connection). Loop-confined.
///
/// Phases: its keeper request (open, status, stop) → waiting for the link → its Tether
/// hello, answered here with the host's cached hello → relaying through the link.
final class KeeperClient {
    enum Phase {
        case awaitingRequest
        case awaitingLink
        case awaitingHello(KeeperLink)
        case relaying(KeeperLink)
        case closed
    }

    let number: Int
    let connection: FrameConnection
    private let reactor: Reactor
    /// A CLI says its request, and later its hello, at once; one that doesn't (stopped,
    /// or not a CLI at all) must not keep the keeper alive forever.
    private var speakUpTimer: TimerHandle?
    static let speakUpSeconds = 10.0
    private(set) var phase = Phase.awaitingRequest
    /// This CLI's channel numbers → the link's.
    var channels: [UInt32: KeeperChannel] = [:]
    /// The descriptor that rode with the open request (SCM_RIGHTS), until the request
    /// says what it is for.
    private var offeredDescriptor: Int32 = -1
    /// The CLI's stdout, written here (`KeeperOpen.directOutput`); nil: all output
    /// crosses the socket.
    private(set) var sink: DescriptorSink?
    /// Said to the keeper's log (a write error that handed output back to the CLI).
    var log: (String) -> Void = { _ in }

    /// The first frame was a keeper request.
    var onRequest: (KeeperClient, KeeperRequest) -> Void = { _, _ in }
    /// Called once when the stream is over, whatever ended it.
    var onClosed: (KeeperClient) -> Void = { _ in }

    init(number: Int, reactor: Reactor, socket: Int32) {
        self.number = number
        self.reactor = reactor
        // A CLI stream is short-lived and mostly small; 64 KiB of read buffer is plenty.
        connection = FrameConnection(reactor: reactor, readFD: socket, writeFD: socket,
                                     name: "tether CLI #\(number)", readBufferSize: 64 * 1024)
        // recvmsg(2), not read(2): a descriptor the CLI passes would be dropped by read.
        connection.reader = { [weak self] fd, buffer in
            var passed: [Int32] = [-1, -1]
            var count: Int32 = 0
            let n = tether_receive_with_descriptors(fd, buffer.baseAddress, UInt(buffer.count), &passed, 2, &count)
            for descriptor in passed.prefix(Int(count)) {
                if let self { self.offered(descriptor) } else { Glibc.close(descriptor) }
            }
            return n
        }
        connection.onFrame = { [weak self] frame in self?.received(frame) }
        connection.onClose = { [weak self] _ in self?.closed() }
        connection.onDrained = { [weak self] in
            guard let self, case .relaying(let link) = self.phase else { return }
            link.clientDrained(self.number)
        }
    }

    func start() {
        connection.start()
        awaitSpeech()
    }

    private func awaitSpeech() {
        if let speakUpTimer { reactor.cancel(speakUpTimer) }
        speakUpTimer = reactor.schedule(after: Self.speakUpSeconds) { [weak self] in
            guard let self else { return }
            self.speakUpTimer = nil
            switch self.phase {
            case .awaitingRequest, .awaitingHello:
                self.connection.fail(ErrorBody(.badFrame, "nothing received for \(Int(Self.speakUpSeconds)) s; closing"))
            default:
                break
            }
        }
    }

    private func stopWaitingForSpeech() {
        if let speakUpTimer { reactor.cancel(speakUpTimer) }
        speakUpTimer = nil
    }

    private func received(_ frame: Frame) {
        switch phase {
        case .awaitingRequest:
            let request: KeeperRequest
            do {
                request = try KeeperCodec.decodeRequest(frame)
            } catch {
                connection.fail(ErrorBody(error.code, "not a keeper request: \(error)"))
                return
            }
            takeSink(for: request)
            // Nothing more is read until the request is answered (the hello waits).
            stopWaitingForSpeech()
            phase = .awaitingLink
            connection.pauseReading()
            onRequest(self, request)
        case .awaitingLink:
            break  // paused; not reached
        case .awaitingHello(let link):
            hello(frame, link: link)
        case .relaying(let link):
            if frame.channel == 0 && frame.type == .error {
                // The CLI gives up on its connection. On a direct connection that ends the
                // SSH connection; here it ends only this CLI's stream.
                connection.closeAfterFlush()
                return
            }
            link.fromClient(self, frame)
        case .closed:
            break
        }
    }

    // MARK: The CLI's stdout

    /// A descriptor the CLI passed: one, with the open request, is kept until the request
    /// is read; anything else is closed at once.
    private func offered(_ descriptor: Int32) {
        guard case .awaitingRequest = phase, offeredDescriptor < 0 else {
            Glibc.close(descriptor)
            return
        }
        offeredDescriptor = descriptor
    }

    private func takeSink(for request: KeeperRequest) {
        let descriptor = offeredDescriptor
        offeredDescriptor = -1
        guard descriptor >= 0 else { return }
        guard case .open(let open) = request, open.directOutput == true else {
            Glibc.close(descriptor)
            return
        }
        sink = DescriptorSink(descriptor: descriptor, reactor: reactor,
            forward: { [weak self] bytes in
                guard let self else { return }
                self.connection.send(bytes: bytes)
                // Anything but an emptied record may be what the CLI waits for (an
                // answer, a command's end): it goes now, with what was held before it.
                self.connection.releaseHeldWrites()
            },
            forwardEmptied: { [weak self] bytes in
                guard let self else { return }
                // The bytes are out already; the CLI only learns how far. Held briefly, a
                // stream's emptied records reach it several per wake-up (its ack and the
                // host's window wait as long: a few ms of an 8 MiB window).
                self.connection.holdWrites(for: Self.emptiedRecordHold)
                self.connection.send(bytes: bytes)
            })
        let number = self.number
        sink?.onWriteError = { [weak self] code in
            self?.log("CLI #\(number): writing its stdout failed (\(String(cString: strerror(code)))); the CLI writes the rest itself")
        }
    }

    /// A record for the CLI, in order with everything else it is sent.
    func deliver(_ record: WireFrame) {
        if let sink { sink.record(record) } else { connection.send(record) }
    }

    /// Any other frame for the CLI; `endsChannel`: the CLI's channel is over with it.
    func deliver(_ frame: Frame, endsChannel: Bool = false) {
        if let sink { sink.frame(frame.encoded(), ends: endsChannel) } else { connection.send(frame) }
    }

    /// How long emptied records may wait for the next ones before they go to the CLI.
    static let emptiedRecordHold = 0.004

    /// Bytes waiting here for the CLI, in its socket's queue or for its stdout.
    var pendingBytes: Int { connection.pendingWriteBytes + (sink?.pendingBytes ?? 0) }

    // MARK: Answers to the keeper request

    /// Answers and ends the stream (status, stop, a failed open, a fallback).
    func finish(with reply: KeeperReply) {
        guard case .awaitingLink = phase else { return }
        connection.send(KeeperCodec.replyFrame(reply))
        connection.closeAfterFlush()
    }

    /// The link is up: say so, then read the CLI's hello.
    func opened(_ link: KeeperLink, notices: [String]) {
        guard case .awaitingLink = phase else { return }
        phase = .awaitingHello(link)
        awaitSpeech()
        connection.send(KeeperCodec.replyFrame(.opened(notices: notices)))
        connection.resumeReading()
        connection.deliverBufferedFrames()
    }

    /// The host's side of the handshake, from the cache: magic and version are checked
    /// exactly as the subsystem checks them, and the hello must be the one the link was
    /// opened for (the link says the client's identity to the host).
    private func hello(_ frame: Frame, link: KeeperLink) {
        stopWaitingForSpeech()
        let hello: Hello
        do {
            // The host's answer is replayed as it came, so the CLI must speak the link's
            // version exactly (Keeper.open already sent a CLI that doesn't elsewhere).
            let link = ProtocolRange(oldest: link.protocolVersion, newest: link.protocolVersion)
            (hello, _) = try Hello.opening(frame, from: [.client], speaking: link) {
                ErrorBody(.badFrame, "expected hello with role client, got role \($0.rawValue)")
            }
        } catch {
            connection.fail(error)
            return
        }
        guard (hello.clientID ?? "") == link.key.clientID else {
            connection.fail(ErrorBody(.badRequest, "this stream was opened for client id \(link.key.clientID), but the hello says \(hello.clientID ?? "none")"))
            return
        }
        guard link.isReady else {
            // The link died between the open answer and this hello.
            linkEnded(sending: KeeperLinkEnd.frame(.lost, "connection lost", failureKind: .connection))
            return
        }
        phase = .relaying(link)
        connection.send(Frame(type: .hello, channel: 0, payload: link.hostHelloPayload))
        link.add(self)
    }

    /// A frame a CLI never sends: say so and end this stream (only this one).
    func violation(_ what: String) {
        connection.protocolFailure(.unexpected(what))
    }

    /// The link is over: pass on its last words (if any) and end the stream.
    func linkEnded(sending last: Frame?) {
        switch phase {
        case .closed:
            return
        case .awaitingHello, .relaying:
            phase = .awaitingLink  // no longer routed anywhere
        case .awaitingRequest, .awaitingLink:
            break
        }
        // What waits for the CLI's stdout goes to the CLI, which resumes on a new link.
        sink?.retireNow()
        if let last { connection.send(last) }
        connection.closeAfterFlush()
    }

    /// Ends the stream now (the keeper stops).
    func close() {
        sink?.retireNow()
        connection.closeAfterFlush()
    }

    private func closed() {
        // The CLI is gone (or its stream ended): its stdout is let go at once, so a
        // downstream reader sees EOF when the CLI's own copies close.
        sink?.drop()
        if offeredDescriptor >= 0 { Glibc.close(offeredDescriptor) }
        offeredDescriptor = -1
        stopWaitingForSpeech()
        let previous = phase
        phase = .closed
        switch previous {
        case .awaitingHello(let link), .relaying(let link):
            link.remove(self)
        default:
            break
        }
        onClosed(self)
    }
}
