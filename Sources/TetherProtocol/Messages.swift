#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Eight bytes that open every `hello` payload, so a stray peer is told apart at once.
public let helloMagic: [UInt8] = Array("TETHER\r\n".utf8)

/// Who is on the other end of a connection; sent in `Hello`.
public enum PeerRole: String, Codable, Sendable {
    case client       // a Tether client, through sshd and the subsystem
    case subsystem    // tether-subsystem talking to the registry or a runspace for a client
    case registry     // the registry's control connection to a runspace
    case host         // the answer from a host process (subsystem, registry, runspace)
}

/// How a client's connection reached the host's Tether side; the host names it in its
/// `Hello` (`route`).
public enum ConnectionRoute: String, Sendable, Equatable {
    /// A session channel running sshd's `Subsystem tether` line (through the login shell).
    case subsystem
    /// A `direct-streamlocal@openssh.com` channel to the registry's gateway socket.
    case gateway
}

/// `hello` body (after magic and u16 version). The u16 of an initiator's hello is the
/// oldest version it speaks and `newestProtocol` the newest; the answer's u16 is the
/// version the connection speaks from then on (ProtocolVersions.swift).
public struct Hello: Codable, Sendable, Equatable {
    public var role: PeerRole
    /// The client's stable id (from TETHER_HOME). Set by clients and relayed by subsystems.
    public var clientID: String?
    /// A human name for the client machine, shown to other clients ("held by …").
    public var clientHost: String?
    public var software: String
    public var hostname: String?
    public var user: String?
    /// Host → client: the registry's gateway socket on this host. A later connection may
    /// open an OpenSSH `direct-streamlocal@openssh.com` channel to it instead of starting
    /// the subsystem through sshd and the login shell (see docs/protocol.md).
    public var gateway: String?
    /// Host → client: how this connection arrived, a `ConnectionRoute` raw value. A string,
    /// so that a route a newer host adds doesn't make the whole hello unreadable.
    public var route: String?
    /// Subsystem → runspace: where the SSH client connected from ("ADDRESS PORT", from
    /// sshd's SSH_CONNECTION), for transcripts. Not set on the gateway route.
    public var clientAddress: String?
    /// The newest protocol version the sender speaks (absent: only the hello's u16 — how
    /// tether 0.1 says protocol 2). A relay offers no more than its client negotiated.
    public var newestProtocol: UInt16?

    public init(role: PeerRole, clientID: String? = nil, clientHost: String? = nil,
                software: String = "tether/\(tetherReleaseVersion)", hostname: String? = nil, user: String? = nil,
                gateway: String? = nil, route: String? = nil, clientAddress: String? = nil,
                newestProtocol: UInt16? = tetherProtocolVersion) {
        self.clientAddress = clientAddress
        self.newestProtocol = newestProtocol
        self.role = role
        self.clientID = clientID
        self.clientHost = clientHost
        self.software = software
        self.hostname = hostname
        self.user = user
        self.gateway = gateway
        self.route = route
    }

    /// The hello frame's payload. The default is an initiator's offer: the oldest version
    /// spoken in the u16 (what tether 0.1 checks), the newest in `newestProtocol`. An
    /// answer passes the negotiated version.
    public func payload(version: UInt16 = tetherOldestProtocolVersion) -> [UInt8] {
        var w = ByteWriter()
        w.write(contentsOf: helloMagic)
        w.write(version)
        w.write(contentsOf: WireJSON.encode(self))
        return w.bytes
    }

    /// Parses a hello payload: the magic, the u16 and the JSON, checking no version.
    public static func read(_ payload: [UInt8]) throws(ProtocolError) -> (hello: Hello, version: UInt16) {
        var r = ByteReader(payload)
        guard payload.count >= helloMagic.count + 2,
              Array(try r.readBytes(helloMagic.count)) == helloMagic else { throw .badMagic }
        let version = try r.readU16()
        return (try WireJSON.decode(Hello.self, from: Array(r.readRest())), version)
    }

    /// The versions a peer's hello offers: its u16 up to its `newestProtocol`.
    public func offered(version: UInt16) -> ProtocolRange {
        ProtocolRange(oldest: version, newest: newestProtocol ?? version)
    }

    /// The initiator's side: parses the answer to our offer and returns the version the
    /// connection speaks. One we did not offer throws `.versionMismatch` *after* the magic
    /// matched, so the caller can say so clearly.
    public static func answer(_ payload: [UInt8], offered ours: ProtocolRange = .ours) throws(ProtocolError) -> (hello: Hello, version: UInt16) {
        let (hello, version) = try read(payload)
        guard ours.contains(version) else {
            throw .versionMismatch(peer: hello.offered(version: version), ours: ours)
        }
        return (hello, version)
    }

    /// Parses an answer and returns only the hello (`answer(_:offered:)`).
    public static func decode(_ payload: [UInt8], accepting ours: ProtocolRange = .ours) throws(ProtocolError) -> Hello {
        try answer(payload, offered: ours).hello
    }

    /// The responder's side: the hello a peer must open a connection with — a `hello`
    /// frame on channel 0 whose magic checks out, from one of `roles`, offering a version
    /// we speak — and the highest version both speak, which the answer's u16 carries.
    /// What to answer otherwise comes back as the thrown `ErrorBody` (`refusingRole` words
    /// the refusal of a wrong role).
    public static func opening(_ frame: Frame, from roles: Set<PeerRole>, speaking ours: ProtocolRange = .ours,
                               refusingRole: (PeerRole) -> ErrorBody) throws(ErrorBody) -> (hello: Hello, version: UInt16) {
        guard frame.type == .hello, frame.channel == 0 else {
            throw ErrorBody(.badFrame, "expected hello as the first frame, got a \(frame.type) frame on channel \(frame.channel)")
        }
        let hello: Hello, offer: ProtocolRange
        do {
            let (read, version) = try read(frame.payload)
            (hello, offer) = (read, read.offered(version: version))
        } catch {
            throw ErrorBody(error.code, error.description)
        }
        guard let version = offer.highestShared(with: ours) else {
            let error = ProtocolError.versionMismatch(peer: offer, ours: ours)
            throw ErrorBody(error.code, error.description)
        }
        guard roles.contains(hello.role) else { throw refusingRole(hello.role) }
        return (hello, version)
    }
}

/// Machine-readable error codes; the message beside them is for people.
public enum ErrorCode: String, Codable, Sendable {
    case badFrame = "bad_frame"
    case frameTooLarge = "frame_too_large"
    case unknownFrameType = "unknown_frame_type"
    case badPayload = "bad_payload"
    case badRequest = "bad_request"
    case versionMismatch = "version_mismatch"
    case notFound = "not_found"
    case busy
    case heldElsewhere = "held_elsewhere"
    case notAttached = "not_attached"
    case sessionClosed = "session_closed"
    case sessionBroken = "session_broken"
    case permissionDenied = "permission_denied"
    case unavailable
    case `internal`
}

public struct ErrorBody: Codable, Sendable, Equatable, Error, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// How a runspace treats output while nobody reads it.
public enum OutputBuffering: String, Codable, Sendable, CaseIterable {
    /// Stop reading the command's output when the buffer is full; the command waits.
    case block
    /// Keep the newest output, discard the oldest, and report how much was dropped.
    case drop
}

/// The bounds of a session's `bufferLimit`, checked by the client (`new`, `invoke
/// --in-disconnected-session`) and by the host (`create`, `configure`, the runspace's own
/// argument). Below the minimum a journal could not hold a command's start and end
/// markers beside a line of output, and every command would stall on its own bookkeeping.
public enum BufferLimit {
    /// 1 KiB: a few lines of output plus the markers of a command.
    public static let minimum = 1024

    /// Nil if `bytes` is an acceptable limit, else what to tell the user.
    public static func problem(_ bytes: Int) -> String? {
        guard bytes >= minimum else {
            return "buffer limit of \(bytes) bytes is below the minimum of \(minimum) bytes (1 KiB)"
        }
        return nil
    }
}

/// Host-side (absolute) life state of a session. Clients derive PowerShell's relative
/// states (Opened/Disconnected) from this plus `holder`.
public enum HostSessionState: String, Codable, Sendable {
    case running     // the runspace is alive
    case closed      // the interpreter exited (exit in a command, or removed)
    case broken      // the runspace or its interpreter died abnormally
}

public struct Holder: Codable, Sendable, Equatable {
    public var clientID: String
    public var clientHost: String
    /// Seconds since 1970.
    public var since: Double
    public init(clientID: String, clientHost: String, since: Double) {
        self.clientID = clientID
        self.clientHost = clientHost
        self.since = since
    }
}

/// Everything a host knows about one session.
public struct SessionInfo: Codable, Sendable, Equatable {
    public var instanceID: String
    public var name: String
    public var configuration: String
    public var state: HostSessionState
    public var holder: Holder?
    /// A command is running now.
    public var busy: Bool
    public var createdAt: Double
    public var lastUsedAt: Double
    /// Seconds without any attachment and without a running command before removal.
    public var idleTimeout: Double
    public var outputBuffering: OutputBuffering
    /// Bytes of unacknowledged output the runspace keeps at most.
    public var bufferLimit: Int
    /// Why the session is Closed or Broken.
    public var reason: String?
    public var exitCode: Int32?
    public var runspacePID: Int32?
    /// Jobs that may run at once, if `create` set it (else `JobLimits.defaultConcurrent`).
    public var jobLimit: Int?
    /// The protocol version the registry and the session's runspace host speak (set by
    /// the registry from the runspace's hello). A runspace of an earlier release — one
    /// started before the host was upgraded — speaks an earlier one, and the subsystem
    /// refuses on its behalf what it lacks. Absent (tether 0.1's registry): the oldest.
    public var protocolVersion: UInt16?

    public init(instanceID: String, name: String, configuration: String, state: HostSessionState,
                holder: Holder?, busy: Bool, createdAt: Double, lastUsedAt: Double,
                idleTimeout: Double, outputBuffering: OutputBuffering, bufferLimit: Int,
                reason: String? = nil, exitCode: Int32? = nil, runspacePID: Int32? = nil) {
        self.instanceID = instanceID
        self.name = name
        self.configuration = configuration
        self.state = state
        self.holder = holder
        self.busy = busy
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.idleTimeout = idleTimeout
        self.outputBuffering = outputBuffering
        self.bufferLimit = bufferLimit
        self.reason = reason
        self.exitCode = exitCode
        self.runspacePID = runspacePID
    }
}

public struct SessionFilter: Codable, Sendable, Equatable {
    /// Shell-style wildcard (`*`, `?`) on the name.
    public var name: String?
    public var instanceID: String?
    public var state: HostSessionState?
    public var configuration: String?
    public init(name: String? = nil, instanceID: String? = nil, state: HostSessionState? = nil, configuration: String? = nil) {
        self.name = name
        self.instanceID = instanceID
        self.state = state
        self.configuration = configuration
    }
}

public enum Signal: String, Codable, Sendable {
    /// SIGINT to the running command's process group; the session lives on.
    case interrupt
    /// Ends the session: the interpreter and its children are killed.
    case terminate
}

/// Control requests. Channel 0 carries the connection-level ones (create, list, claim,
/// release, remove, ping); a channel N > 0 is opened by `attach` and carries the rest.
public enum Request: Codable, Sendable, Equatable {
    case create(CreateRequest)
    case list(SessionFilter)
    /// Take the session for this client (`tether connect`). `force` takes it from another.
    case claim(instanceID: String, force: Bool)
    /// Let go of the session (`tether disconnect`); optionally change its settings.
    case release(instanceID: String, idleTimeout: Double?, outputBuffering: OutputBuffering?)
    /// End the session. One held by another client needs `force` (as `claim` does); nil
    /// (a request without the key) is false.
    case remove(instanceID: String, force: Bool?)
    case ping
    /// On channel N: bind the channel to the session (claims it; `force` takes it from
    /// another client). With `receive`, the runspace replays every record after its
    /// acknowledged sequence number and streams all output live to this channel; without,
    /// the channel gets only the records of commands it starts itself.
    case attach(instanceID: String, force: Bool, receive: Bool)
    /// On channel N: unbind the channel. The session and its command go on.
    case detach
    /// On channel N: run a script. `wait` false fails at once with `busy` if a command runs.
    case invoke(InvokeRequest)
    /// On channel N: signal the running command. (From the registry's control
    /// connection, `terminate` ends the runspace for remove and idle timeout.)
    case signal(Signal)
    /// Registry → runspace: change how output is buffered while nobody reads it, or the
    /// idle timeout the runspace keeps for `describe`.
    case configure(outputBuffering: OutputBuffering?, bufferLimit: Int?, idleTimeout: Double? = nil)
    /// Registry → runspace: "who are you?" — answered with `session`, the runspace's own
    /// account of itself (how a registry whose table was lost recovers it).
    case describe
    /// On channel N: the client's window changed size; the running command's terminal
    /// takes it (its program gets SIGWINCH). Ignored without a terminal command.
    case resize(TerminalSize)
    /// On channel N: bind the channel to the session's jobs (Jobs.swift). No claim: any
    /// client of the user may see and manage a session's jobs.
    case jobs(instanceID: String)
    /// On a jobs channel: start a job (a copy of the session's shell running `script`).
    case jobStart(JobStartRequest)
    /// On a jobs channel: every job of the session.
    case jobList
    /// On a jobs channel: send the job's unacknowledged output; with `follow`, live until
    /// it ends (`jobEnded` record), else up to what it had (`jobCaughtUp` record).
    case jobReceive(jobID: UInt64, follow: Bool)
    /// On a jobs channel: answered with `job` once the job has ended.
    case jobWait(jobID: UInt64)
    /// On a jobs channel: SIGINT, SIGTERM, SIGKILL to the job's process group; answered
    /// with `job` once it has ended.
    case jobStop(jobID: UInt64)
    /// On a jobs channel: forget the job and its output; a running one only with `force`
    /// (stopped first).
    case jobRemove(jobID: UInt64, force: Bool)
    /// The session configurations this user may use on the host (`tether configurations`).
    case configurations
    /// Registry → runspace: the runtime directory was cleaned under us (a /tmp cleaner);
    /// bind the session's socket again if it is gone, and re-create its work directory.
    /// Answered with `done`. A runspace of an older release answers `failure` (badRequest).
    case restoreSocket
}

extension Request {
    /// The request's name as it appears on the wire, for messages.
    public var kindName: String {
        switch self {
        case .create: "create"
        case .list: "list"
        case .claim: "claim"
        case .release: "release"
        case .remove: "remove"
        case .ping: "ping"
        case .attach: "attach"
        case .detach: "detach"
        case .invoke: "invoke"
        case .signal: "signal"
        case .resize: "resize"
        case .configure: "configure"
        case .describe: "describe"
        case .jobs: "jobs"
        case .jobStart: "jobStart"
        case .jobList: "jobList"
        case .jobReceive: "jobReceive"
        case .jobWait: "jobWait"
        case .jobStop: "jobStop"
        case .jobRemove: "jobRemove"
        case .configurations: "configurations"
        case .restoreSocket: "restoreSocket"
        }
    }
}

public struct CreateRequest: Codable, Sendable, Equatable {
    public var name: String?
    public var configuration: String?
    public var idleTimeout: Double?
    public var outputBuffering: OutputBuffering?
    public var bufferLimit: Int?
    /// Jobs that may run at once in the session (default `JobLimits.defaultConcurrent`).
    public var jobLimit: Int?
    public init(name: String? = nil, configuration: String? = nil, idleTimeout: Double? = nil,
                outputBuffering: OutputBuffering? = nil, bufferLimit: Int? = nil, jobLimit: Int? = nil) {
        self.jobLimit = jobLimit
        self.name = name
        self.configuration = configuration
        self.idleTimeout = idleTimeout
        self.outputBuffering = outputBuffering
        self.bufferLimit = bufferLimit
    }
}

public struct InvokeRequest: Codable, Sendable, Equatable {
    public var script: String
    public var arguments: [String]
    /// The client will send `stdinData`/`stdinEOF`; otherwise the command reads /dev/null.
    public var stdin: Bool
    /// Wait for a running command to finish (up to `waitTimeout` seconds) or fail at once.
    public var wait: Bool
    public var waitTimeout: Double?
    /// Chosen by the client, the same for every attempt at one invocation: the runspace
    /// remembers recent tokens, so a retry after a lost `started` finds the command it
    /// already started instead of running it twice.
    public var token: UInt64?
    /// Run the command on a pseudo-terminal (invoke flag 16): its stdin, stdout and stderr
    /// are the terminal, `stdinData` frames are keystrokes, output arrives as `stdout`.
    public var terminal: TerminalRequest?
    public init(script: String, arguments: [String] = [], stdin: Bool = false, wait: Bool = true, waitTimeout: Double? = nil,
                token: UInt64? = nil, terminal: TerminalRequest? = nil) {
        self.script = script
        self.arguments = arguments
        self.stdin = stdin
        self.wait = wait
        self.waitTimeout = waitTimeout
        self.token = token
        self.terminal = terminal
    }
}

/// The client's terminal, for a command run on a pseudo-terminal: TERM and the window size.
public struct TerminalRequest: Codable, Sendable, Equatable {
    public var term: String
    public var size: TerminalSize
    public init(term: String, size: TerminalSize) {
        self.term = term
        self.size = size
    }
}

/// A window size in character cells.
public struct TerminalSize: Codable, Sendable, Equatable {
    public var rows: UInt16
    public var columns: UInt16
    public init(rows: UInt16, columns: UInt16) {
        self.rows = rows
        self.columns = columns
    }
}

/// Answers. `ok` carries the result of the request it answers.
public enum Response: Codable, Sendable, Equatable {
    case session(SessionInfo)
    case sessions([SessionInfo])
    case attached(AttachInfo)
    case started(commandID: UInt64)
    case pong
    case done
    case failure(ErrorBody)
    /// One job (jobStart, jobWait, jobStop, jobReceive).
    case job(JobInfo)
    /// The session's jobs (jobList).
    case jobList([JobInfo])
    /// The answer to `configurations`.
    case configurations([ConfigurationInfo])
}

/// A session configuration as a client sees it: what `tether configurations` lists.
public struct ConfigurationInfo: Codable, Sendable, Equatable {
    public var name: String
    /// `shell` or `restricted`.
    public var kind: String
    public var description: String
    public init(name: String, kind: String, description: String) {
        self.name = name
        self.kind = kind
        self.description = description
    }
}

public struct AttachInfo: Codable, Sendable, Equatable {
    public var session: SessionInfo
    /// Records after this one will be replayed, then live output follows.
    public var ackedSeq: UInt64
    /// The newest sequence number the runspace has assigned.
    public var lastSeq: UInt64
    /// The command running now, if any (a `receive` follows it to its end).
    public var runningCommandID: UInt64?
    /// True if this attach took the session from another client.
    public var tookOver: Bool
    /// The running command reads forwarded stdin and its end (`stdinEOF`) has arrived, so
    /// every byte sent before it did too; false: its stdin is still open; nil: it reads
    /// no forwarded stdin (or no command runs). A resume uses it to tell a complete input
    /// from one it has to cut.
    public var stdinEnded: Bool?
    public init(session: SessionInfo, ackedSeq: UInt64, lastSeq: UInt64, runningCommandID: UInt64?, tookOver: Bool,
                stdinEnded: Bool? = nil) {
        self.session = session
        self.ackedSeq = ackedSeq
        self.lastSeq = lastSeq
        self.runningCommandID = runningCommandID
        self.tookOver = tookOver
        self.stdinEnded = stdinEnded
    }
}

/// Unsolicited notices. Runspaces send `status` to the registry's control connection.
public enum Event: Codable, Sendable, Equatable {
    case status(RunspaceStatus)
    /// A channel's session was taken by another client (`connect --force` elsewhere).
    case takenOver(by: Holder)
    /// Registry → runspace → every attached channel: the session is being removed, by
    /// this client (`tether remove`); the runspace ends next.
    case removed(by: Holder)
}

public struct RunspaceStatus: Codable, Sendable, Equatable {
    public var instanceID: String
    public var state: HostSessionState
    public var busy: Bool
    /// Channels attached now (from any subsystem).
    public var attachments: Int
    public var pid: Int32
    public var reason: String?
    public var exitCode: Int32?
    public init(instanceID: String, state: HostSessionState, busy: Bool, attachments: Int, pid: Int32, reason: String? = nil, exitCode: Int32? = nil) {
        self.instanceID = instanceID
        self.state = state
        self.busy = busy
        self.attachments = attachments
        self.pid = pid
        self.reason = reason
        self.exitCode = exitCode
    }
}

// MARK: Control frame payloads

public enum ControlCodec {
    /// A request payload: u32 id, then JSON — or, for `invoke`, its binary form
    /// (`CommandCodec`), since every command makes one.
    public static func request(id: UInt32, _ request: Request) -> [UInt8] {
        var w = ByteWriter()
        w.write(id)
        if case .invoke(let invoke) = request {
            CommandCodec.write(invoke, to: &w)
        } else {
            w.write(contentsOf: WireJSON.encode(request))
        }
        return w.bytes
    }

    public static func decodeRequest(_ payload: [UInt8]) throws(ProtocolError) -> (UInt32, Request) {
        var r = ByteReader(payload)
        let id = try r.readU32()
        switch try r.peekU8() {
        case CommandCodec.jsonStart:
            return (id, try WireJSON.decode(Request.self, from: Array(r.readRest())))
        case CommandCodec.invokeTag:
            _ = try r.readU8()
            return (id, .invoke(try CommandCodec.readInvoke(&r)))
        case let tag:
            throw .badPayload("request \(id): unknown body tag 0x\(String(tag, radix: 16)) (neither JSON nor a binary invoke)")
        }
    }

    /// A response payload: u32 id, then JSON — or, for `started`, its binary form.
    public static func response(id: UInt32, _ response: Response) -> [UInt8] {
        var w = ByteWriter()
        w.write(id)
        if case .started(let commandID) = response {
            CommandCodec.writeStarted(commandID: commandID, to: &w)
        } else if case .sessions(let infos) = response {
            // The one response that grows with the host: same JSON, written by hand.
            w.write(contentsOf: SessionListCoding.encode(infos))
        } else {
            w.write(contentsOf: WireJSON.encode(response))
        }
        return w.bytes
    }

    public static func decodeResponse(_ payload: [UInt8]) throws(ProtocolError) -> (UInt32, Response) {
        var r = ByteReader(payload)
        let id = try r.readU32()
        switch try r.peekU8() {
        case CommandCodec.jsonStart:
            if let infos = try SessionListCoding.decodeIfSessions(payload, from: r.offset) {
                return (id, .sessions(infos))
            }
            return (id, try WireJSON.decode(Response.self, from: Array(r.readRest())))
        case CommandCodec.startedTag:
            _ = try r.readU8()
            return (id, try CommandCodec.readStarted(&r))
        case let tag:
            throw .badPayload("response \(id): unknown body tag 0x\(String(tag, radix: 16)) (neither JSON nor a binary started)")
        }
    }

    public static func ack(_ seq: UInt64) -> [UInt8] {
        var w = ByteWriter(); w.write(seq); return w.bytes
    }

    public static func decodeAck(_ payload: [UInt8]) throws(ProtocolError) -> UInt64 {
        // Exactly the seq: trailing bytes are a malformed ack, not one to read past.
        guard payload.count == 8 else { throw .badPayload("an ack is a u64 seq (8 bytes), not \(payload.count) bytes") }
        var r = ByteReader(payload)
        return try r.readU64()
    }

    /// The request id of a request or response payload, without parsing the JSON.
    public static func requestID(of payload: [UInt8]) -> UInt32? {
        var r = ByteReader(payload)
        return try? r.readU32()
    }

    public static func errorFrame(channel: UInt32, _ body: ErrorBody) -> Frame {
        Frame(type: .error, channel: channel, payload: WireJSON.encode(body))
    }

    public static func eventFrame(channel: UInt32, _ event: Event) -> Frame {
        Frame(type: .event, channel: channel, payload: WireJSON.encode(event))
    }
}

/// JSON for control payloads only (never on the output path).
public enum WireJSON {
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding our own plain value types cannot fail.
        return Array((try? encoder.encode(value)) ?? Data("null".utf8))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(ProtocolError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw .badPayload("\(T.self): \(error)")
        }
    }
}
