import Glibc
import CTetherPosix
import TetherIO
import TetherProtocol
import XCTest

/// A blocking test client for `tether-subsystem` run directly with pipes as its stdin and
/// stdout — the SSH channel without the SSH. Every wait has a deadline (poll(2) on the
/// pipe), so a silent host fails the test instead of hanging it. Frames that arrive while
/// waiting for something else are kept and handed out later, in order.
final class StdioSubsystem {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let pid: pid_t
    let clientID: String
    let clientHost: String
    private var toChild: Int32
    private let fromChild: Int32
    private var decoder = FrameDecoder()
    private var queue: [Frame] = []
    private(set) var sawEndOfStream = false
    private var nextRequestID: UInt32 = 1
    private var pidFD: Int32
    var timeout: Double = 20

    init(binary: String, arguments: [String], environment: [String: String],
         clientID: String, clientHost: String, workingDirectory: String? = nil) throws {
        guard access(binary, X_OK) == 0 else {
            throw Failure(description: "\(binary) is missing: run `swift build` first")
        }
        self.clientID = clientID
        self.clientHost = clientHost
        signal(SIGPIPE, SIG_IGN)
        let input = try StdioSubsystem.pipe()
        let output = try StdioSubsystem.pipe()
        var options = Spawn.Options()
        options.fileActions = [0: input.read, 1: output.write]
        var env = Spawn.currentEnvironment().filter { entry in
            !environment.keys.contains { entry.hasPrefix("\($0)=") }
        }
        env += environment.map { "\($0.key)=\($0.value)" }
        options.environment = env
        options.workingDirectory = workingDirectory
        pid = try Spawn.spawn(path: binary, arguments: [binary] + arguments, options: options)
        close(input.read)
        close(output.write)
        toChild = input.write
        fromChild = output.read
        pidFD = tether_pidfd_open(pid)
    }

    deinit {
        if toChild >= 0 { close(toChild) }
        close(fromChild)
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        if pidFD >= 0 { close(pidFD) }
    }

    private static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard tether_pipe2(&fds, Int32(O_CLOEXEC)) == 0 else { throw SystemError.last("pipe2") }
        return (fds[0], fds[1])
    }

    // MARK: Sending

    func send(raw bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(toChild, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError.last("write to the subsystem")
            }
            offset += n
        }
    }

    func send(_ frame: Frame) throws { try send(raw: frame.encoded()) }

    /// Our end of stdin closes: the subsystem sees EOF.
    func closeInput() {
        if toChild >= 0 { close(toChild) }
        toChild = -1
    }

    // MARK: Receiving

    /// The next frame matching `predicate` (others are kept for later); nil at EOF.
    func nextFrame(timeout: Double? = nil, what: String = "a frame",
                   where predicate: (Frame) -> Bool = { _ in true }) throws -> Frame? {
        let deadline = Reactor.now() + UInt64((timeout ?? self.timeout) * 1e9)
        while true {
            if let index = queue.firstIndex(where: predicate) { return queue.remove(at: index) }
            if sawEndOfStream { return nil }
            let now = Reactor.now()
            guard now < deadline else { throw Failure(description: "timed out waiting for \(what)") }
            var entry = pollfd(fd: fromChild, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32((deadline - now) / 1_000_000) + 1)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 256 * 1024)
            let n = buffer.withUnsafeMutableBytes { read(fromChild, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw SystemError.last("read from the subsystem")
            }
            if n == 0 { sawEndOfStream = true; continue }
            decoder.append(buffer[0..<n])
            while let frame = try decoder.next() { queue.append(frame) }
        }
    }

    /// The next error frame (on any channel), decoded.
    func nextError(timeout: Double? = nil) throws -> (channel: UInt32, body: ErrorBody) {
        guard let frame = try nextFrame(timeout: timeout, what: "an error frame", where: { $0.type == .error }) else {
            throw Failure(description: "the subsystem closed stdout without an error frame")
        }
        return (frame.channel, try WireJSON.decode(ErrorBody.self, from: frame.payload))
    }

    /// Waits for the subsystem to exit; its exit status.
    func waitForExit(timeout: Double = 10) throws -> ExitStatus {
        if pidFD >= 0 {
            var entry = pollfd(fd: pidFD, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, Int32(timeout * 1000)) > 0 else {
                throw Failure(description: "the subsystem (pid \(pid)) did not exit within \(timeout)s")
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw SystemError.last("waitpid") }
        }
        return ExitStatus(waitStatus: status)
    }

    // MARK: Protocol

    @discardableResult
    func hello(version: UInt16 = tetherProtocolVersion, role: PeerRole = .client) throws -> Hello {
        try send(Frame(type: .hello, channel: 0,
                       payload: Hello(role: role, clientID: clientID, clientHost: clientHost,
                                      software: "registry-tests").payload(version: version)))
        guard let frame = try nextFrame(what: "the host's hello", where: { $0.channel == 0 }) else {
            throw Failure(description: "the subsystem closed stdout instead of answering hello")
        }
        guard frame.type == .hello else {
            throw Failure(description: "expected hello, got \(frame.type): \(String(decoding: frame.payload, as: UTF8.self))")
        }
        return try Hello.decode(frame.payload)
    }

    func sendRequest(channel: UInt32 = 0, _ request: Request) throws -> UInt32 {
        let id = nextRequestID
        nextRequestID += 1
        try send(Frame(type: .request, channel: channel, payload: ControlCodec.request(id: id, request)))
        return id
    }

    func awaitResponse(channel: UInt32 = 0, id: UInt32, timeout: Double? = nil) throws -> Response {
        guard let frame = try nextFrame(timeout: timeout, what: "the response to request \(id) on channel \(channel)", where: {
            ($0.type == .response && $0.channel == channel && ControlCodec.requestID(of: $0.payload) == id)
                || ($0.type == .error && ($0.channel == channel || $0.channel == 0))
        }) else {
            throw Failure(description: "the subsystem closed stdout before answering request \(id)")
        }
        if frame.type == .error {
            let body = try WireJSON.decode(ErrorBody.self, from: frame.payload)
            throw Failure(description: "error frame on channel \(frame.channel): \(body.code.rawValue): \(body.message)")
        }
        return try ControlCodec.decodeResponse(frame.payload).1
    }

    func request(channel: UInt32 = 0, _ request: Request, timeout: Double? = nil) throws -> Response {
        try awaitResponse(channel: channel, id: try sendRequest(channel: channel, request), timeout: timeout)
    }

    // MARK: Typed helpers (a failure response throws)

    func create(_ create: CreateRequest = CreateRequest()) throws -> SessionInfo {
        let response = try request(.create(create), timeout: 30)
        guard case .session(let info) = response else { throw unexpected(response, "create") }
        return info
    }

    func list(_ filter: SessionFilter = SessionFilter()) throws -> [SessionInfo] {
        let response = try request(.list(filter))
        guard case .sessions(let sessions) = response else { throw unexpected(response, "list") }
        return sessions
    }

    func session(_ instanceID: String) throws -> SessionInfo? {
        try list(SessionFilter(instanceID: instanceID)).first
    }

    func remove(_ instanceID: String) throws {
        let response = try request(.remove(instanceID: instanceID, force: nil))
        guard case .done = response else { throw unexpected(response, "remove") }
    }

    func attach(channel: UInt32, _ instanceID: String, force: Bool = false, receive: Bool = false) throws -> AttachInfo {
        let response = try request(channel: channel, .attach(instanceID: instanceID, force: force, receive: receive))
        guard case .attached(let info) = response else { throw unexpected(response, "attach") }
        return info
    }

    /// Runs `script` on an attached channel and collects its stdout until commandEnded.
    func invoke(channel: UInt32, _ script: String, timeout: Double = 30) throws -> (stdout: String, status: Int32) {
        let result = try invokeCollecting(channel: channel, script, timeout: timeout)
        return (String(decoding: result.stdout, as: UTF8.self), result.status)
    }

    /// Runs `script`, acknowledging as it reads (every 1 MiB, as clients must), and returns
    /// its raw stdout. `beforeReading` runs after `started`, before any output is read.
    func invokeCollecting(channel: UInt32, _ script: String, stdin: [UInt8]? = nil, timeout: Double = 30,
                          beforeReading: () throws -> Void = {}) throws -> (stdout: [UInt8], status: Int32) {
        let response = try request(channel: channel, .invoke(InvokeRequest(script: script, stdin: stdin != nil)), timeout: timeout)
        guard case .started(let commandID) = response else { throw unexpected(response, "invoke") }
        if let stdin {
            try send(Frame(type: .stdinData, channel: channel, payload: stdin))
            try send(Frame(type: .stdinEOF, channel: channel))
        }
        try beforeReading()
        var stdout: [UInt8] = []
        var lastSeq: UInt64 = 0
        var unacknowledged = 0
        while true {
            guard let frame = try nextFrame(timeout: timeout, what: "output of command \(commandID)", where: {
                $0.channel == channel && ($0.type == .record || $0.type == .error)
            }) else { throw Failure(description: "stdout closed while command \(commandID) ran") }
            if frame.type == .error {
                let body = try WireJSON.decode(ErrorBody.self, from: frame.payload)
                throw Failure(description: "error frame while command ran: \(body.message)")
            }
            let record = try Record.decode(frame.payload)
            if lastSeq != 0 && record.seq != lastSeq + 1 {
                throw Failure(description: "record \(record.seq) after \(lastSeq): a gap or a repeat")
            }
            lastSeq = record.seq
            unacknowledged += record.body.count
            switch record.kind {
            case .stdout: stdout += record.body
            case .commandEnded where try record.commandID() == commandID:
                try send(Frame(type: .ack, channel: channel, payload: ControlCodec.ack(lastSeq)))
                return (stdout, try record.exitStatus())
            default: break
            }
            if unacknowledged >= 1 << 20 {
                try send(Frame(type: .ack, channel: channel, payload: ControlCodec.ack(lastSeq)))
                unacknowledged = 0
            }
        }
    }

    func unexpected(_ response: Response, _ what: String) -> Failure {
        if case .failure(let body) = response {
            return Failure(description: "\(what) failed: \(body.code.rawValue): \(body.message)")
        }
        return Failure(description: "unexpected answer to \(what): \(response)")
    }
}

extension Response {
    /// The failure body, if this is a failure.
    var failure: ErrorBody? {
        if case .failure(let body) = self { return body }
        return nil
    }
}
