import CTetherPosix
import Glibc
import TetherIO
import TetherProtocol
import TetherSSH

/// The CLI's end of a keeper stream: a `ByteTransport` over the keeper's Unix socket.
/// Loop-confined.
///
/// `start` finds (or starts) the keeper, sends the open request and waits for the answer:
/// `opened` → the Tether stream flows as if the socket were the host; `failed` → the
/// connection failure, reported exactly as a direct connection reports it; `fallback`, or
/// no keeper to be had → a direct `SSHTransport`, silently, with the same callbacks.
final class KeeperTransport: ByteTransport {
    private enum Phase {
        case idle
        case opening
        case relaying
        case direct(ByteTransport)
        case closed
    }

    private let reactor: Reactor
    private let destination: String
    private let options: ConnectionOptions
    private let target: SSHTarget
    private var request: KeeperOpen
    /// Passphrases were asked for at this terminal and sent once already.
    private var sentPassphrases = false
    /// Password and keyboard-interactive answers asked for at this terminal.
    private var logins = LoginRelay()
    private let paths: KeeperPaths
    private let executable: String
    private var phase = Phase.idle

    private var fd: Int32 = -1
    private var readRegistration: Registration?
    private var writeRegistration: Registration?
    private var queue = WriteQueue()
    private var answer: [UInt8] = []
    private var scanner = LinkEndScanner()
    private var readingPaused = false
    private var eofRequested = false
    private var eofSent = false
    private var wasBackedUp = false
    private var retriedOpen = false
    private var readBuffer = [UInt8](repeating: 0, count: 256 * 1024)

    private var onReady: () -> Void = {}
    private var onData: (UnsafeRawBufferPointer) -> Void = { _ in }
    private var onClose: ((TetherClientError?) -> Void)?

    var onDrained: (() -> Void)?
    /// Only the direct connection of a fallback reads into the reader's buffer; the
    /// keeper's socket lends its own through `onData`.
    var readsInto: ((_ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int)?

    static let highWatermark = 4 << 20
    static let lowWatermark = 1 << 20

    var pendingWriteBytes: Int {
        if case .direct(let transport) = phase { return transport.pendingWriteBytes }
        return queue.pendingBytes
    }

    /// The keeper watches its link; a direct connection (fallback) watches itself.
    var liveness: LivenessWatch.Settings? {
        if case .direct(let transport) = phase { return transport.liveness }
        return nil
    }

    private init(reactor: Reactor, destination: String, target: SSHTarget, options: ConnectionOptions,
                 request: KeeperOpen, paths: KeeperPaths, executable: String) {
        self.reactor = reactor
        self.destination = destination
        self.target = target
        self.options = options
        self.request = request
        self.paths = paths
        self.executable = executable
    }

    /// `target` was resolved here (`ConnectionPlan`), in the CLI's environment and working
    /// directory (a bad config is the same error as without a keeper), for the keeper to
    /// connect to.
    static func make(reactor: Reactor, destination: String, target: SSHTarget, options: ConnectionOptions,
                     hello: Hello, home: ClientHome, executable: String) -> ByteTransport {
        let request = KeeperOpen(version: keeperWireVersion, destination: destination,
                                 target: KeeperTarget(target), hello: hello,
                                 handshakeTimeout: options.handshakeTimeout, verbose: options.verbosity > 0)
        return KeeperTransport(reactor: reactor, destination: destination, target: target, options: options,
                               request: request, paths: KeeperPaths(home: home, executable: executable),
                               executable: executable)
    }

    // MARK: Opening

    func start(onReady: @escaping () -> Void, onData: @escaping (UnsafeRawBufferPointer) -> Void,
               onClose: @escaping (TetherClientError?) -> Void) {
        guard case .idle = phase else { return }
        self.onReady = onReady
        self.onData = onData
        self.onClose = onClose
        openStream()
    }

    /// Connects to the keeper (starting one if needed) and sends the open request.
    private func openStream() {
        do {
            fd = try KeeperLauncher.connect(paths: paths, executable: executable)
        } catch {
            fallBack()
            return
        }
        setNonBlocking(fd)
        phase = .opening
        answer = []
        sendOpenRequest()
        flush()
        watchReadable()
    }

    /// The open request; the CLI's stdout rides with its first byte when it was offered
    /// (`KeeperDirectOutput`). The socket is fresh, so the send takes it all; if it took
    /// nothing the request goes without the descriptor and the keeper relays as always.
    private func sendOpenRequest() {
        var open = request
        let stdout = KeeperDirectOutput.descriptor
        open.directOutput = stdout == nil ? nil : true
        let bytes = KeeperCodec.requestFrame(.open(open)).encoded()
        guard let stdout else {
            queue.append(bytes)
            return
        }
        let sent = bytes.withUnsafeBytes { tether_send_with_descriptor(fd, $0.baseAddress, UInt($0.count), stdout) }
        if sent < 0 {
            queue.append(bytes)
        } else if sent < bytes.count {
            queue.append(Array(bytes[sent...]))
        }
    }

    /// Received while opening: the keeper's one answer.
    private func answerBytes(_ bytes: [UInt8]) {
        answer.append(contentsOf: bytes)
        guard answer.count >= 4 else { return }
        let length = Int(answer[0]) << 24 | Int(answer[1]) << 16 | Int(answer[2]) << 8 | Int(answer[3])
        guard length <= Frame.maxPayloadLength + Frame.headerLength else { fallBack(); return }
        guard answer.count >= 4 + length else { return }
        var decoder = FrameDecoder()
        decoder.append(answer[0..<4 + length])
        let rest = Array(answer[(4 + length)...])
        answer = []
        let reply: KeeperReply
        do {
            guard let frame = try decoder.next() else { fallBack(); return }
            reply = try KeeperCodec.decodeReply(frame)
        } catch {
            fallBack()
            return
        }
        switch reply {
        case .opened(let notices):
            phase = .relaying
            // The link has logged in: nothing here needs the secrets any more.
            request.passphrases = nil
            request.logins = nil
            logins = LoginRelay()
            notices.forEach { SSHNotice.printToStandardError($0) }
            if options.verbosity > 0 {
                SSHNotice.printToStandardError("\(destination): keeper: stream opened (keeper socket \(paths.socket), log \(paths.log))")
            }
            onReady()
            if !rest.isEmpty { rest.withUnsafeBytes { relay($0) } }
        case .failed(let failure):
            finish(failure.error(host: destination))
        case .fallback(let reason, let keys, let question):
            if let keys, !keys.isEmpty, !sentPassphrases, let typed = askPassphrases(keys) {
                // Typed here once; the keeper logs in with them and forgets them, and the
                // next command rides the warm link without a prompt.
                sentPassphrases = true
                request.passphrases = typed
                releaseSocket()
                openStream()
                return
            }
            if let question, !target.preferences.batchMode,
               logins.ask(question, prompts: target.preferences.passwordPrompts) {
                // The same hand-off for a password or the server's prompts.
                if options.verbosity > 0 {
                    SSHNotice.printToStandardError("\(destination): keeper: handing it the answer to the \(question.method.rawValue) question for this link's login")
                }
                request.logins = logins.answers
                releaseSocket()
                openStream()
                return
            }
            fallBack(reason)
        case .status, .stopping:
            fallBack()
        }
    }

    /// Asks the person for each key's passphrase (terminal or SSH_ASKPASS); nil if any
    /// goes unanswered (then the direct connection asks, or says why it can't).
    private func askPassphrases(_ keys: [String]) -> [String: String]? {
        var typed: [String: String] = [:]
        let provider = TTYPassphraseProvider()
        for key in keys {
            guard let answer = provider.passphrase(for: key) else { return nil }
            typed[key] = answer
        }
        if options.verbosity > 0 {
            SSHNotice.printToStandardError("\(destination): keeper: handing it the passphrase of \(keys.joined(separator: ", ")) for this link's login")
        }
        return typed
    }

    /// No keeper to be had, or it can't serve this: a direct connection, silently, with
    /// the caller's callbacks (nothing has been said to them yet).
    private func fallBack(_ reason: String? = nil) {
        releaseSocket()
        if options.verbosity > 0 {
            SSHNotice.printToStandardError("\(destination): keeper: connecting directly\(reason.map { " (\($0))" } ?? " (no keeper could be reached)")")
        }
        let direct = SSHTransport.make(reactor: reactor, destination: destination, target: target)
        phase = .direct(direct)
        direct.onDrained = { [weak self] in self?.onDrained?() }
        direct.readsInto = readsInto
        if readingPaused { direct.pauseReading() }
        direct.start(onReady: onReady, onData: onData, onClose: { [weak self] error in
            guard let self, let callback = self.onClose else { return }
            self.onClose = nil
            self.phase = .closed
            callback(error)
        })
        if eofRequested { direct.sendEOF() }
    }

    // MARK: ByteTransport

    func write(_ bytes: [UInt8]) {
        switch phase {
        case .direct(let transport):
            transport.write(bytes)
        case .relaying, .opening:
            guard !eofRequested else { return }
            queue.append(bytes)
            if queue.pendingBytes > Self.highWatermark { wasBackedUp = true }
            if writeRegistration == nil { flush() }
        case .idle, .closed:
            break
        }
    }

    func pauseReading() {
        readingPaused = true
        if case .direct(let transport) = phase { transport.pauseReading(); return }
        if let readRegistration { reactor.update(readRegistration, interest: .none) }
    }

    func resumeReading() {
        readingPaused = false
        if case .direct(let transport) = phase { transport.resumeReading(); return }
        watchReadable()
    }

    func sendEOF() {
        eofRequested = true
        if case .direct(let transport) = phase { transport.sendEOF(); return }
        if queue.isEmpty { shutDownWriting() }
    }

    func close() {
        onClose = nil
        if case .direct(let transport) = phase { transport.close() }
        releaseSocket()
        phase = .closed
    }

    // MARK: The socket

    private func flush() {
        guard fd >= 0 else { return }
        switch queue.flush(to: fd, name: "the tether keeper") {
        case .flushed:
            if let writeRegistration { reactor.unregister(writeRegistration) }
            writeRegistration = nil
            if eofRequested { shutDownWriting() }
        case .wouldBlock:
            if writeRegistration == nil {
                writeRegistration = reactor.register(fd: fd, interest: .writable) { [weak self] readiness in
                    guard let self else { return }
                    if readiness.contains(.writable) {
                        self.flush()
                    } else {
                        self.writeFailed()
                    }
                }
            }
        case .failed:
            writeFailed()
            return
        }
        if wasBackedUp && queue.pendingBytes <= Self.lowWatermark {
            wasBackedUp = false
            onDrained?()
        }
    }

    /// The keeper stopped reading: it is gone or going. Reading says why (its last words,
    /// or the end of the stream), so only stop writing here.
    private func writeFailed() {
        queue.removeAll()
        if let writeRegistration { reactor.unregister(writeRegistration) }
        writeRegistration = nil
        if case .opening = phase { keeperGoneWhileOpening() }
    }

    /// The keeper went away before answering: killed, or it was exiting (idle) just as we
    /// connected. Once more with a fresh keeper, then directly.
    private func keeperGoneWhileOpening() {
        releaseSocket()
        if retriedOpen {
            fallBack()
        } else {
            retriedOpen = true
            openStream()
        }
    }

    private func shutDownWriting() {
        guard !eofSent, fd >= 0 else { return }
        eofSent = true
        _ = shutdown(fd, Int32(SHUT_WR))
    }

    /// Registers for reading unless paused. While paused the descriptor stays registered
    /// with no interest; a hangup seen then drops the registration (the reactor's rule),
    /// and resuming registers again so the bytes still buffered are read.
    private func watchReadable() {
        guard fd >= 0 else { return }
        if let readRegistration {
            reactor.update(readRegistration, interest: readingPaused ? .none : .readable)
            return
        }
        readRegistration = reactor.register(fd: fd, interest: readingPaused ? .none : .readable) { [weak self] readiness in
            guard let self else { return }
            if readiness.contains(.readable) || !self.readingPaused {
                self.readAvailable()
            } else {
                // Hangup while paused: the reactor drops this registration after we return.
                self.readRegistration = nil
            }
        }
    }

    private func readAvailable() {
        for _ in 0..<4 {
            guard fd >= 0, !readingPaused else { return }
            let n = readBuffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return }
                streamEnded(SystemError.last("read from the tether keeper"))
                return
            }
            if n == 0 {
                streamEnded(nil)
                return
            }
            switch phase {
            case .opening: answerBytes(Array(readBuffer[0..<n]))
            case .relaying: readBuffer.withUnsafeBytes { relay(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            default: return
            }
            if n < readBuffer.count { return }
        }
    }

    /// Passes the stream on in place, up to the keeper's last word about the link.
    private func relay(_ bytes: UnsafeRawBufferPointer) {
        let onData = self.onData
        guard let end = scanner.feed(bytes, pass: onData) else { return }
        guard case .relaying = phase else { return }
        finish(end.error(host: destination))
    }

    private func streamEnded(_ error: SystemError?) {
        switch phase {
        case .opening:
            keeperGoneWhileOpening()
        case .relaying:
            if eofSent && error == nil {
                finish(nil)
            } else {
                let why = error.map { "\($0)" } ?? "it closed the stream"
                finish(TetherClientError(.connection, host: destination,
                    "lost the connection through the tether keeper (\(why); its log: \(paths.log))"))
            }
        default:
            break
        }
    }

    private func finish(_ error: TetherClientError?) {
        releaseSocket()
        phase = .closed
        let callback = onClose
        onClose = nil
        callback?(error)
    }

    private func releaseSocket() {
        if let readRegistration { reactor.unregister(readRegistration) }
        if let writeRegistration { reactor.unregister(writeRegistration) }
        readRegistration = nil
        writeRegistration = nil
        queue.removeAll()
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}
