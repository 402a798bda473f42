import Foundation
import Glibc
import TetherIO
import TetherProtocol

/// A small blocking client for a runspace socket, speaking what a tether-subsystem relays:
/// hello, attach, invoke, stdin, ack, signal. Frames it isn't waiting for are kept in
/// arrival order for a later `next(where:)`.
final class RunspaceClient {
    let fd: Int32
    private var decoder = FrameDecoder()
    private var inbox: [Frame] = []
    private var nextRequestID: UInt32 = 1
    private(set) var peerHello: Hello?
    private(set) var closedByPeer = false

    init(path: String, role: PeerRole, clientID: String) throws {
        fd = try UnixSocket.connect(path: path)
        send(Frame(type: .hello, channel: 0,
                   payload: Hello(role: role, clientID: clientID, clientHost: "test-host").payload()))
        let answer = try next { _ in true }
        guard answer.type == .hello else {
            throw RunspaceTestError("expected the runspace's hello, got \(answer.type): \(String(decoding: answer.payload, as: UTF8.self))")
        }
        peerHello = try Hello.decode(answer.payload)
    }

    /// Connects and sends raw bytes as the first thing (garbage tests).
    init(path: String) throws {
        fd = try UnixSocket.connect(path: path)
    }

    deinit { close(fd) }

    // MARK: Sending

    func send(_ frame: Frame) { sendRaw(frame.encoded()) }

    func sendRaw(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }  // peer gone: reads will say so
            offset += n
        }
    }

    @discardableResult
    func request(_ request: Request, channel: UInt32) -> UInt32 {
        let id = nextRequestID
        nextRequestID += 1
        send(Frame(type: .request, channel: channel, payload: ControlCodec.request(id: id, request)))
        return id
    }

    func ack(_ seq: UInt64, channel: UInt32) {
        send(Frame(type: .ack, channel: channel, payload: ControlCodec.ack(seq)))
    }

    func stdin(_ bytes: [UInt8], channel: UInt32) {
        send(Frame(type: .stdinData, channel: channel, payload: bytes))
    }

    func stdinEOF(channel: UInt32) {
        send(Frame(type: .stdinEOF, channel: channel))
    }

    // MARK: Receiving

    /// The next frame matching `predicate` (earlier non-matching ones stay queued).
    func next(timeout: Double = 20, where predicate: (Frame) -> Bool) throws -> Frame {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let index = inbox.firstIndex(where: predicate) {
                return inbox.remove(at: index)
            }
            guard try readMore(until: deadline) else {
                throw RunspaceTestError("connection closed while waiting for a frame; unconsumed: \(inbox.map { "\($0.type)@\($0.channel)" })")
            }
        }
    }

    /// Waits up to `timeout` for a matching frame; nil if none came.
    func poll(timeout: Double, where predicate: (Frame) -> Bool) throws -> Frame? {
        do {
            return try next(timeout: timeout, where: predicate)
        } catch let error as RunspaceTestError where error.description.hasPrefix("timed out") {
            return nil
        }
    }

    /// True once the runspace has closed the connection (reads what is left on the way).
    func waitForClose(timeout: Double = 10) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        do {
            while try readMore(until: deadline) {}
            return true
        } catch let error as RunspaceTestError where error.description.hasPrefix("timed out") {
            return false
        }
    }

    /// Reads once; false at EOF. Throws on timeout.
    private func readMore(until deadline: Date) throws -> Bool {
        if closedByPeer { return false }
        while true {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let remaining = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
            let ready = Glibc.poll(&entry, 1, remaining)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { throw RunspaceTestError("timed out waiting for the runspace") }
            var buffer = [UInt8](repeating: 0, count: 256 * 1024)
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                closedByPeer = true
                return false
            }
            decoder.append(buffer[0..<n])
            while let frame = try decoder.next() { inbox.append(frame) }
            return true
        }
    }

    func response(to id: UInt32, channel: UInt32, timeout: Double = 20) throws -> Response {
        let frame = try next(timeout: timeout) {
            $0.type == .response && $0.channel == channel && ControlCodec.requestID(of: $0.payload) == id
        }
        return try ControlCodec.decodeResponse(frame.payload).1
    }

    func nextRecord(channel: UInt32, timeout: Double = 20) throws -> Record {
        let frame = try next(timeout: timeout) { $0.type == .record && $0.channel == channel }
        return try Record.decode(frame.payload)
    }

    func nextError(timeout: Double = 20) throws -> ErrorBody {
        let frame = try next(timeout: timeout) { $0.type == .error }
        return try WireJSON.decode(ErrorBody.self, from: frame.payload)
    }

    // MARK: Conversations

    func attach(channel: UInt32, instanceID: String, receive: Bool) throws -> AttachInfo {
        let id = request(.attach(instanceID: instanceID, force: false, receive: receive), channel: channel)
        let answer = try response(to: id, channel: channel)
        guard case .attached(let info) = answer else { throw RunspaceTestError("attach answered \(answer)") }
        return info
    }

    /// Sends an invoke and returns its answer: the command id, or the failure.
    func start(_ script: String, arguments: [String] = [], stdin: Bool = false, wait: Bool = true,
               waitTimeout: Double? = nil, terminal: TerminalRequest? = nil, channel: UInt32 = 1,
               timeout: Double = 20) throws -> Result<UInt64, ErrorBody> {
        let id = request(.invoke(InvokeRequest(script: script, arguments: arguments, stdin: stdin,
                                               wait: wait, waitTimeout: waitTimeout, terminal: terminal)), channel: channel)
        switch try response(to: id, channel: channel, timeout: timeout) {
        case .started(let commandID): return .success(commandID)
        case .failure(let body): return .failure(body)
        case let other: throw RunspaceTestError("invoke answered \(other)")
        }
    }

    /// Collects a command's records up to its `commandEnded` and acknowledges them (with
    /// `every`, at least every that many bytes, as a real client does).
    func collect(commandID: UInt64, channel: UInt32 = 1, acknowledge: Bool = true, every: Int? = nil,
                 timeout: Double = 20) throws -> CommandOutput {
        var output = CommandOutput(commandID: commandID)
        var unacknowledged = 0
        while true {
            let record = try nextRecord(channel: channel, timeout: timeout)
            output.records.append(record)
            unacknowledged += record.body.count
            if acknowledge, let every, unacknowledged >= every {
                ack(record.seq, channel: channel)
                unacknowledged = 0
            }
            switch record.kind {
            case .stdout: output.stdout += record.body
            case .stderr: output.stderr += record.body
            case .commandEnded where try record.commandID() == commandID:
                output.exitStatus = try record.exitStatus()
                if acknowledge { ack(record.seq, channel: channel) }
                return output
            default: break
            }
        }
    }

    /// Runs a command to its end and returns what it wrote and its status.
    func run(_ script: String, arguments: [String] = [], stdin: [UInt8]? = nil, channel: UInt32 = 1,
             timeout: Double = 20) throws -> CommandOutput {
        let started = try start(script, arguments: arguments, stdin: stdin != nil, channel: channel)
        guard case .success(let commandID) = started else { throw RunspaceTestError("invoke failed: \(started)") }
        if let stdin {
            if !stdin.isEmpty { self.stdin(stdin, channel: channel) }
            stdinEOF(channel: channel)
        }
        return try collect(commandID: commandID, channel: channel, timeout: timeout)
    }
}

/// Everything one command produced, as one channel saw it.
struct CommandOutput {
    let commandID: UInt64
    var records: [Record] = []
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    var exitStatus: Int32?
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}
