import Foundation
import Glibc
import TetherIO
import TetherProtocol

/// What one command produced, as a client saw it.
public struct InvokeResult: Sendable {
    public var commandID: UInt64
    public var stdout: [UInt8] = []
    public var stderr: [UInt8] = []
    public var exitStatus: Int32 = -1
    /// Every record of the command, commandStarted through commandEnded, in order.
    public var records: [Record] = []
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// A blocking Tether client for tests, speaking the protocol through the real OpenSSH
/// client: it runs `ssh … -s user@127.0.0.1 tether` and talks frames over its pipes.
///
/// Every read has a deadline (poll(2) on the pipe), so a silent host fails the test with a
/// message instead of hanging it. Frames that arrive while the client waits for something
/// else (records on another channel, a response while collecting output) are queued and
/// handed out by later calls in arrival order.
///
///     let client = try ProtocolTestClient(fixture: host)           // hello done
///     let session = try client.createSession(name: "s1")
///     _ = try client.attach(channel: 1, instanceID: session.instanceID)
///     let result = try client.invoke(channel: 1, script: "echo hi")
public final class ProtocolTestClient {
    /// Client-side protocol errors, each with the detail a failing test needs.
    public enum ClientError: Error, CustomStringConvertible {
        /// The host answered a request with `failure`.
        case failure(ErrorBody)
        /// The host sent an `error` frame (fatal for that channel, 0: the connection).
        case errorFrame(channel: UInt32, ErrorBody)
        case timeout(String)
        case endOfStream(String)
        case unexpected(String)

        public var description: String {
            switch self {
            case .failure(let body): "request failed: \(body.code.rawValue): \(body.message)"
            case .errorFrame(let channel, let body): "error frame on channel \(channel): \(body.code.rawValue): \(body.message)"
            case .timeout(let what): "timed out: \(what)"
            case .endOfStream(let what): "connection ended: \(what)"
            case .unexpected(let what): "unexpected: \(what)"
            }
        }

        /// The error code of a `failure` or `error` frame.
        public var code: ErrorCode? {
            switch self {
            case .failure(let body), .errorFrame(_, let body): body.code
            default: nil
            }
        }
    }

    public let clientID: String
    public let clientHost: String
    /// The `ssh` process.
    public let pid: pid_t
    /// The host's hello, once exchanged.
    public private(set) var hostHello: Hello?
    /// Where ssh's stderr goes (authentication failures, "connection closed"…).
    public let stderrPath: String
    /// Seconds any single wait may take unless a call says otherwise.
    public var defaultTimeout: Double

    private let toSSH: Int32
    private let fromSSH: Int32
    private var decoder = FrameDecoder()
    private var queue: [Frame] = []
    private var endOfStream = false
    private var nextRequestID: UInt32 = 1
    private var exitStatus: ExitStatus?
    private var inputClosed = false
    /// The highest sequence number seen per channel: a repeat or a step back is an error.
    private var lastSeq: [UInt32: UInt64] = [:]

    nonisolated(unsafe) private static var connectionCounter = 0

    /// Starts `ssh -s … tether` against `fixture` and, unless `hello` is false, exchanges
    /// hellos (role client). `command` replaces `fixture.subsystemCommand` (another port,
    /// extra ssh options), e.g. to go through a `TCPProxy`.
    public init(fixture: SSHDFixture, clientID: String = UUID().uuidString.lowercased(),
                clientHost: String = "test-client", hello: Bool = true, timeout: Double = 20,
                command: [String]? = nil) throws {
        self.clientID = clientID
        self.clientHost = clientHost
        self.defaultTimeout = timeout
        Processes.ignoreSIGPIPE()
        ProtocolTestClient.connectionCounter += 1
        stderrPath = "\(fixture.directory)/ssh-client-\(getpid())-\(ProtocolTestClient.connectionCounter).stderr"

        let input = try Descriptors.pipe()
        let output = try Descriptors.pipe()
        let errorFD = open(stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard errorFD >= 0 else { throw SystemError.last("open \(stderrPath)") }
        var options = Spawn.Options()
        options.fileActions = [0: input.read, 1: output.write, 2: errorFD]
        let command = command ?? fixture.subsystemCommand
        do {
            pid = try Spawn.spawn(path: try Processes.resolve(command[0]), arguments: command, options: options)
        } catch {
            [input.read, input.write, output.read, output.write, errorFD].forEach { Glibc.close($0) }
            throw error
        }
        Glibc.close(input.read); Glibc.close(output.write); Glibc.close(errorFD)
        toSSH = input.write
        fromSSH = output.read
        Descriptors.setNonBlocking(toSSH)
        Descriptors.setNonBlocking(fromSSH)
        if hello { hostHello = try self.hello() }
    }

    deinit {
        kill()
        Glibc.close(fromSSH)
        if !inputClosed { Glibc.close(toSSH) }
    }

    // MARK: Handshake and requests

    /// Sends our hello and returns the host's (checking role and version).
    @discardableResult
    public func hello(role: PeerRole = .client) throws -> Hello {
        try send(Frame(type: .hello, channel: 0,
                       payload: Hello(role: role, clientID: clientID, clientHost: clientHost, software: "tether-tests").payload()))
        let frame = try nextFrame(timeout: defaultTimeout, what: "the host's hello") { $0.channel == 0 }
        guard frame.type == .hello else {
            throw ClientError.unexpected("expected the host's hello, got \(describe(frame))")
        }
        let hello = try Hello.decode(frame.payload)
        guard hello.role == .host else { throw ClientError.unexpected("host said hello with role \(hello.role)") }
        hostHello = hello
        return hello
    }

    /// Sends `request` on `channel` and waits for its response (any response, `failure`
    /// included). An `error` frame on the channel or on channel 0 is thrown.
    public func request(channel: UInt32 = 0, _ request: Request, timeout: Double? = nil) throws -> Response {
        let id = try sendRequest(channel: channel, request)
        return try awaitResponse(channel: channel, id: id, timeout: timeout, what: "\(request)")
    }

    /// Sends a request without waiting; returns its id (see `awaitResponse`).
    public func sendRequest(channel: UInt32 = 0, _ request: Request) throws -> UInt32 {
        let id = nextRequestID
        nextRequestID += 1
        try send(Frame(type: .request, channel: channel, payload: ControlCodec.request(id: id, request)))
        return id
    }

    /// Waits for the response to request `id` on `channel`.
    public func awaitResponse(channel: UInt32, id: UInt32, timeout: Double? = nil, what: String = "a response") throws -> Response {
        let frame = try nextFrame(timeout: timeout ?? defaultTimeout, what: "the response to \(what) on channel \(channel)") {
            ($0.type == .response && $0.channel == channel && ControlCodec.requestID(of: $0.payload) == id)
                || ($0.type == .error && ($0.channel == channel || $0.channel == 0))
        }
        if frame.type == .error { throw ClientError.errorFrame(channel: frame.channel, try Self.errorBody(frame)) }
        return try ControlCodec.decodeResponse(frame.payload).1
    }

    // MARK: Typed conveniences (throw `.failure` for a failure response)

    public func createSession(_ create: CreateRequest = CreateRequest()) throws -> SessionInfo {
        let response = try request(.create(create))
        guard case .session(let info) = response else { throw unexpectedResponse(response, to: "create") }
        return info
    }

    public func createSession(name: String) throws -> SessionInfo {
        try createSession(CreateRequest(name: name))
    }

    public func listSessions(_ filter: SessionFilter = SessionFilter()) throws -> [SessionInfo] {
        let response = try request(.list(filter))
        guard case .sessions(let list) = response else { throw unexpectedResponse(response, to: "list") }
        return list
    }

    /// The one session with `instanceID` (throws if the host does not list it).
    public func session(_ instanceID: String) throws -> SessionInfo {
        guard let info = try listSessions(SessionFilter(instanceID: instanceID)).first else {
            throw ClientError.unexpected("the host does not list session \(instanceID)")
        }
        return info
    }

    public func attach(channel: UInt32, instanceID: String, force: Bool = false, receive: Bool = false) throws -> AttachInfo {
        let response = try request(channel: channel, .attach(instanceID: instanceID, force: force, receive: receive))
        guard case .attached(let info) = response else { throw unexpectedResponse(response, to: "attach") }
        return info
    }

    /// Starts a command; returns its id once the runspace said `started` (with `wait`, the
    /// answer comes only when the session is free). Output is read by `collect`.
    public func startCommand(channel: UInt32, script: String, arguments: [String] = [], stdin: Bool = false,
                             wait: Bool = true, waitTimeout: Double? = nil, timeout: Double? = nil) throws -> UInt64 {
        let id = try sendRequest(channel: channel, .invoke(InvokeRequest(
            script: script, arguments: arguments, stdin: stdin, wait: wait, waitTimeout: waitTimeout)))
        return try awaitStarted(channel: channel, requestID: id, timeout: timeout)
    }

    /// Waits for the `started` answer to an invoke sent with `sendRequest`.
    public func awaitStarted(channel: UInt32, requestID: UInt32, timeout: Double? = nil) throws -> UInt64 {
        let response = try awaitResponse(channel: channel, id: requestID, timeout: timeout, what: "invoke")
        guard case .started(let commandID) = response else { throw unexpectedResponse(response, to: "invoke") }
        return commandID
    }

    public func sendStdin(channel: UInt32, _ bytes: [UInt8]) throws {
        var offset = 0
        repeat {
            let end = min(bytes.count, offset + 64 * 1024)
            try send(Frame(type: .stdinData, channel: channel, payload: Array(bytes[offset..<end])))
            offset = end
        } while offset < bytes.count
    }

    public func sendStdinEOF(channel: UInt32) throws {
        try send(Frame(type: .stdinEOF, channel: channel))
    }

    public func ack(channel: UInt32, seq: UInt64) throws {
        try send(Frame(type: .ack, channel: channel, payload: ControlCodec.ack(seq)))
    }

    public func signal(channel: UInt32, _ signal: Signal) throws {
        let response = try request(channel: channel, .signal(signal))
        guard case .done = response else { throw unexpectedResponse(response, to: "signal \(signal)") }
    }

    /// Reads the records of command `commandID` on `channel` up to its `commandEnded`,
    /// acknowledging as it goes (every MiB and at the end), as a real client must.
    public func collect(channel: UInt32, commandID: UInt64, timeout: Double? = nil) throws -> InvokeResult {
        let deadline = Deadline(secondsFromNow: timeout ?? defaultTimeout)
        var result = InvokeResult(commandID: commandID)
        var started = false
        var unacknowledgedBytes = 0
        while true {
            let frame = try nextFrame(timeout: deadline.remainingSeconds, what: "the output of command \(commandID) on channel \(channel)") {
                ($0.type == .record && $0.channel == channel) || ($0.type == .error && ($0.channel == channel || $0.channel == 0))
            }
            if frame.type == .error { throw ClientError.errorFrame(channel: frame.channel, try Self.errorBody(frame)) }
            let record = try Record.decode(frame.payload)
            if let last = lastSeq[channel], record.seq <= last {
                throw ClientError.unexpected("record seq \(record.seq) after \(last) on channel \(channel) (repeat or reorder)")
            }
            lastSeq[channel] = record.seq
            switch record.kind {
            case .commandStarted:
                started = try record.commandID() == commandID
            case .stdout where started:
                result.stdout += record.body
            case .stderr where started:
                result.stderr += record.body
            case .sessionBroken:
                throw ClientError.unexpected("session broke while running command \(commandID): \(String(decoding: record.body, as: UTF8.self))")
            case .sessionClosed:
                let (code, reason) = try record.closedInfo()
                throw ClientError.unexpected("session closed (exit \(code): \(reason)) while running command \(commandID)")
            default:
                break
            }
            if started { result.records.append(record) }
            unacknowledgedBytes += record.body.count
            if record.kind == .commandEnded, try record.commandID() == commandID {
                result.exitStatus = try record.exitStatus()
                try ack(channel: channel, seq: record.seq)
                return result
            }
            if unacknowledgedBytes >= 1 << 20 {
                try ack(channel: channel, seq: record.seq)
                unacknowledgedBytes = 0
            }
        }
    }

    /// Runs `script` on an attached channel and returns its output: invoke, stdin (when
    /// given: sent whole, then EOF), records to commandEnded, ack.
    public func invoke(channel: UInt32, script: String, args: [String] = [], stdin: [UInt8]? = nil,
                       wait: Bool = true, timeout: Double? = nil) throws -> InvokeResult {
        let commandID = try startCommand(channel: channel, script: script, arguments: args,
                                         stdin: stdin != nil, wait: wait, timeout: timeout)
        if let stdin {
            if !stdin.isEmpty { try sendStdin(channel: channel, stdin) }
            try sendStdinEOF(channel: channel)
        }
        return try collect(channel: channel, commandID: commandID, timeout: timeout)
    }

    // MARK: Raw frames and bytes

    public func send(_ frame: Frame) throws {
        try sendRaw(frame.encoded())
    }

    /// Writes bytes to the subsystem's stdin as they are (garbage tests).
    public func sendRaw(_ bytes: [UInt8]) throws {
        guard !inputClosed else { throw ClientError.unexpected("input already closed") }
        do {
            try Descriptors.writeAll(toSSH, bytes, until: Deadline(secondsFromNow: defaultTimeout), what: "ssh's stdin")
        } catch {
            throw ClientError.endOfStream("cannot write to ssh (\(error)); \(diagnostics)")
        }
    }

    /// Ends the subsystem's stdin (ssh sends EOF on the channel); output can still be read.
    public func closeInput() {
        guard !inputClosed else { return }
        inputClosed = true
        Glibc.close(toSSH)
    }

    /// The next frame in arrival order (queued ones first); nil at end of stream.
    /// Throws on timeout, or if the bytes are not frames.
    public func readFrame(timeout: Double? = nil) throws -> Frame? {
        if !queue.isEmpty { return queue.removeFirst() }
        return try readFromPipe(until: Deadline(secondsFromNow: timeout ?? defaultTimeout), what: "a frame")
    }

    /// The first frame, queued or new, that `matches`; others are queued for later.
    public func nextFrame(timeout: Double? = nil, what: String = "a frame", where matches: (Frame) -> Bool) throws -> Frame {
        if let index = queue.firstIndex(where: matches) { return queue.remove(at: index) }
        let deadline = Deadline(secondsFromNow: timeout ?? defaultTimeout)
        while true {
            guard let frame = try readFromPipe(until: deadline, what: what) else {
                throw ClientError.endOfStream("while waiting for \(what); \(diagnostics)")
            }
            if matches(frame) { return frame }
            queue.append(frame)
        }
    }

    /// Frames received but not yet handed out.
    public var queuedFrames: [Frame] { queue }

    private func readFromPipe(until deadline: Deadline, what: String) throws -> Frame? {
        while true {
            if let frame = try decoder.next() { return frame }
            if endOfStream {
                if decoder.hasPartialFrame {
                    throw ClientError.unexpected("the host's output ended inside a frame (\(decoder.bufferedByteCount) bytes)")
                }
                return nil
            }
            guard let chunk = try Descriptors.readChunk(fromSSH, until: deadline) else {
                throw ClientError.timeout("waiting for \(what) from the host; \(diagnostics)")
            }
            if chunk.isEmpty { endOfStream = true } else { decoder.append(chunk) }
        }
    }

    // MARK: The ssh process

    /// Waits for ssh to exit (after the host closed the channel, or `closeInput`).
    @discardableResult
    public func waitForExit(timeout: Double? = nil) throws -> ExitStatus {
        if let exitStatus { return exitStatus }
        let status = try Processes.waitForChild(pid, timeout: timeout ?? defaultTimeout)
        exitStatus = status
        return status
    }

    /// Ends the connection politely: EOF on stdin, then wait for ssh (killed if it lingers).
    public func close(timeout: Double = 5) {
        closeInput()
        if (try? waitForExit(timeout: timeout)) == nil { kill() }
    }

    /// `kill -9` the ssh client: the connection drops as if the network went away.
    public func kill() {
        guard exitStatus == nil else { return }
        _ = Glibc.kill(pid, SIGKILL)
        exitStatus = try? Processes.waitForChild(pid, timeout: 5)
    }

    public var isRunning: Bool { exitStatus == nil && Processes.reapIfExited(pid).map { exitStatus = $0; return false } ?? true }

    /// What ssh printed on stderr.
    public var stderrText: String { String(decoding: Descriptors.readFile(stderrPath) ?? [], as: UTF8.self) }

    private var diagnostics: String {
        let text = stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "ssh printed nothing on stderr" : "ssh stderr: \(text)"
    }

    // MARK: Helpers

    public static func errorBody(_ frame: Frame) throws -> ErrorBody {
        try WireJSON.decode(ErrorBody.self, from: frame.payload)
    }

    private func unexpectedResponse(_ response: Response, to request: String) -> ClientError {
        if case .failure(let body) = response { return .failure(body) }
        return .unexpected("\(response) in answer to \(request)")
    }

    private func describe(_ frame: Frame) -> String {
        if frame.type == .error, let body = try? Self.errorBody(frame) {
            return "error frame \(body.code.rawValue): \(body.message)"
        }
        return "\(frame.type) frame on channel \(frame.channel) (\(frame.payload.count) bytes)"
    }
}
