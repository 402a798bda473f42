import TetherIO
import TetherProtocol
import TetherSSH

/// The CLI ⇄ keeper preamble (docs/protocol.md, "Client keeper"). The keeper socket
/// speaks Tether frames: the first frame is a `request` on channel 0 with request id 0 and
/// a JSON `KeeperRequest`; the keeper answers with one `response` on channel 0, id 0, JSON
/// `KeeperReply`. After `opened` the stream is the ordinary Tether protocol, as if the
/// keeper were the host. These types live here, not in TetherProtocol, because only the
/// two ends of this one local socket (both in this module) ever read them.
let keeperWireVersion = 1

enum KeeperRequest: Codable, Sendable, Equatable {
    /// Give me a stream to this host over a warm connection.
    case open(KeeperOpen)
    /// Describe the links (`tether keeper --status`).
    case status
    /// Close every link cleanly and exit (`tether keeper --stop`).
    case stop
}

struct KeeperOpen: Codable, Sendable, Equatable {
    var version: Int
    /// The computer as the user named it: every message names it.
    var destination: String
    /// The ssh config as the CLI resolved it (its HOME, its config file, its cwd).
    var target: KeeperTarget
    /// The client's own hello; the keeper says it to the host on the link.
    var hello: Hello
    /// Seconds from starting the SSH connection to the host's hello.
    var handshakeTimeout: Double
    /// `-v`: the answer's notices also say what the keeper did (a new link or a warm one).
    var verbose: Bool? = nil
    /// Passphrases the person typed at the CLI for the keys a `fallback` named, by key
    /// path: used for this link's login only, then forgotten (never logged, never kept
    /// with the link). Sent only over the keeper's peer-checked socket.
    var passphrases: [String: String]? = nil
    /// Password and keyboard-interactive answers the person typed at the CLI for the
    /// question a `fallback` carried: for this link's login only, like `passphrases`.
    var logins: LoginAnswers? = nil
    /// The CLI's stdout rides with this request (SCM_RIGHTS, attached to its first byte):
    /// the keeper writes the bodies of the stream's stdout records into it itself
    /// (`DescriptorSink`) and passes the CLI each record with its body emptied.
    var directOutput: Bool? = nil
}

enum KeeperReply: Codable, Sendable, Equatable {
    /// The link is up; the Tether stream starts now. `notices` are what the SSH setup
    /// would have printed (a host key added to known_hosts…), for the CLI to print.
    case opened(notices: [String])
    /// The connection failed exactly as a direct one would have.
    case failed(KeeperFailure)
    /// The keeper can't serve this (a key needs a passphrase typed on a terminal, another
    /// version…): connect directly instead. Never used for a real connection failure.
    /// `keys`: identity files whose passphrase the CLI may ask for and send back;
    /// `question`: a password or keyboard-interactive question for the CLI to ask, its
    /// answers sent back in `KeeperOpen.logins`.
    case fallback(reason: String, keys: [String]? = nil, question: LoginQuestion? = nil)
    case status(KeeperStatus)
    case stopping
}

/// A connection failure as the CLI must report it: kind, message, remote code.
struct KeeperFailure: Codable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable {
        case connection, versionMismatch, protocolViolation, remote
    }
    var kind: Kind
    var code: ErrorCode?
    var message: String

    init(_ kind: Kind, code: ErrorCode? = nil, _ message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    /// The same classification HostConnection applies to an error frame from the host.
    init(hostError body: ErrorBody) {
        switch body.code {
        case .versionMismatch: self.init(.versionMismatch, body.message)
        case .badFrame, .frameTooLarge, .unknownFrameType, .badPayload: self.init(.protocolViolation, body.message)
        default: self.init(.remote, code: body.code, body.message)
        }
    }

    func error(host: String) -> TetherClientError {
        switch kind {
        case .connection: TetherClientError(.connection, host: host, message)
        case .versionMismatch: TetherClientError(.versionMismatch, host: host, message)
        case .protocolViolation: TetherClientError(.protocolViolation, host: host, message)
        case .remote: TetherClientError(.remote(code ?? .internal), host: host, message)
        }
    }
}

/// What `tether keeper --status` prints.
struct KeeperStatus: Codable, Sendable, Equatable {
    struct Link: Codable, Sendable, Equatable {
        var destination: String
        /// "alias (host:port)" as ssh messages name it.
        var host: String
        /// connecting, ready, closing
        var state: String
        /// How the link reached the host: "subsystem" or "gateway" (nil until ready).
        var route: String?
        /// CLI streams using it now.
        var clients: Int
        /// CLI streams it has served since it connected.
        var opens: Int
        /// Channels (session attachments) relayed now.
        var channels: Int
        var connectedSecondsAgo: Double
        var idleSeconds: Double
        /// Not reading the host: a CLI's socket is backed up (head of line).
        var waitingForSlowClient: Bool
        /// Not reading its CLIs: the SSH channel has too much queued.
        var waitingForHost: Bool
    }
    var pid: Int32
    var socket: String
    var persistSeconds: Double
    var clients: Int
    var links: [Link]
}

/// The last frame a keeper sends a CLI whose link ended: a channel-0 `error` whose JSON
/// also carries `keeper`. `KeeperTransport` takes it off the stream and reports the end
/// as a transport close (so the CLI says "connection lost", exit 255, as a direct
/// connection would); to anything else it reads as an ordinary error frame.
struct KeeperLinkEnd: Codable, Sendable, Equatable {
    enum Reason: String, Codable, Sendable {
        /// The connection failed or was lost: `message` says how, `kind` how to report it.
        case lost
        /// The connection was closed cleanly (by the host, or the keeper idling out).
        case closed
    }
    var code: ErrorCode
    var message: String
    var keeper: Reason
    var kind: KeeperFailure.Kind?

    static func frame(_ reason: Reason, _ message: String, failureKind: KeeperFailure.Kind? = nil) -> Frame {
        Frame(type: .error, channel: 0, payload: WireJSON.encode(
            KeeperLinkEnd(code: .unavailable, message: message, keeper: reason, kind: failureKind)))
    }

    /// How the CLI reports it: nil for a clean close. A keeper sends this only to a CLI it
    /// had put on a link that was up, so a connection failure is a *lost* connection —
    /// also while the CLI is still in its handshake (a direct connection's handshake
    /// failure stays `.connection`): what `invoke` may open again, nothing having been
    /// sent (`Reconnector.reopen`).
    func error(host: String) -> TetherClientError? {
        guard keeper == .lost else { return nil }
        let error = KeeperFailure(kind ?? .connection, message).error(host: host)
        return error.kind == .connection ? error.as(.connectionLost) : error
    }
}

/// `SSHTarget` as JSON: the CLI resolves the ssh config (in its own environment and
/// working directory) and the keeper connects to exactly that.
struct KeeperTarget: Codable, Sendable, Hashable {
    var alias: String
    var hostName: String
    var port: Int
    var user: String
    var identityFiles: [String]
    var identitiesOnly: Bool
    var knownHostsFiles: [String]
    var globalKnownHostsFiles: [String]
    var strictHostKeyChecking: String
    var connectTimeout: Double?
    var serverAliveInterval: Double?
    var serverAliveCountMax: Int?
    var subsystem: String
    var gatewaySocket: String?
    var proxyCommand: [String]?
    var preferences: SSHPreferences

    /// How many stored properties `SSHTarget` has; a unit test compares it with the real
    /// type so a new field can't be silently dropped on the way to the keeper.
    static let mirroredFieldCount = 16

    init(_ target: SSHTarget) {
        alias = target.alias
        hostName = target.hostName
        port = target.port
        user = target.user
        identityFiles = target.identityFiles
        identitiesOnly = target.identitiesOnly
        knownHostsFiles = target.knownHostsFiles
        globalKnownHostsFiles = target.globalKnownHostsFiles
        strictHostKeyChecking = target.strictHostKeyChecking.rawValue
        connectTimeout = target.connectTimeout
        serverAliveInterval = target.serverAliveInterval
        serverAliveCountMax = target.serverAliveCountMax
        subsystem = target.subsystem
        gatewaySocket = target.gatewaySocket
        proxyCommand = target.proxyCommand
        preferences = target.preferences
    }

    var sshTarget: SSHTarget {
        var target = SSHTarget(alias: alias, hostName: hostName, port: port, user: user,
                               identityFiles: identityFiles, identitiesOnly: identitiesOnly,
                               knownHostsFiles: knownHostsFiles,
                               strictHostKeyChecking: HostKeyPolicy(rawValue: strictHostKeyChecking) ?? .yes,
                               connectTimeout: connectTimeout, serverAliveInterval: serverAliveInterval,
                               subsystem: subsystem)
        target.globalKnownHostsFiles = globalKnownHostsFiles
        target.serverAliveCountMax = serverAliveCountMax
        target.gatewaySocket = gatewaySocket
        target.proxyCommand = proxyCommand
        target.preferences = preferences
        return target
    }
}

/// Framing of the preamble: request/response frames on channel 0 with request id 0.
enum KeeperCodec {
    static func requestFrame(_ request: KeeperRequest) -> Frame {
        var w = ByteWriter()
        w.write(UInt32(0))
        w.write(contentsOf: WireJSON.encode(request))
        return Frame(type: .request, channel: 0, payload: w.bytes)
    }

    static func replyFrame(_ reply: KeeperReply) -> Frame {
        var w = ByteWriter()
        w.write(UInt32(0))
        w.write(contentsOf: WireJSON.encode(reply))
        return Frame(type: .response, channel: 0, payload: w.bytes)
    }

    static func decodeRequest(_ frame: Frame) throws(ProtocolError) -> KeeperRequest {
        guard frame.type == .request, frame.channel == 0 else {
            throw .unexpected("expected a keeper request (a request frame on channel 0), got a \(frame.type) frame on channel \(frame.channel)")
        }
        var r = ByteReader(frame.payload)
        _ = try r.readU32()
        return try WireJSON.decode(KeeperRequest.self, from: Array(r.readRest()))
    }

    static func decodeReply(_ frame: Frame) throws(ProtocolError) -> KeeperReply {
        guard frame.type == .response, frame.channel == 0 else {
            throw .unexpected("expected the keeper's answer (a response frame on channel 0), got a \(frame.type) frame on channel \(frame.channel)")
        }
        var r = ByteReader(frame.payload)
        _ = try r.readU32()
        return try WireJSON.decode(KeeperReply.self, from: Array(r.readRest()))
    }
}
