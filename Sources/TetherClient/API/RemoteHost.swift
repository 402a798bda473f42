import TetherIO
import TetherProtocol

/// One open connection to a computer. Every method may be called from any task; the
/// work happens on the client's event loop.
public final class RemoteHost: Sendable {
    /// The computer as it was named to `connect`.
    public let computerName: String
    /// What the host said about itself in its hello (hostname, user, software).
    public let hostHello: Hello
    /// How this connection reached the host: sshd's `tether` subsystem, or (after a first
    /// connection named it) the host's gateway socket.
    public var route: ConnectionRoute { hostHello.route.flatMap(ConnectionRoute.init(rawValue:)) ?? .subsystem }
    /// The protocol version this connection speaks: the highest both this client and the
    /// host's subsystem speak (an older host's, with a host one release behind).
    public let protocolVersion: UInt16
    /// The host's release as its hello named it ("0.2"), if it said (0.1 said "0.1"
    /// whatever it was built from).
    public var hostRelease: String? {
        hostHello.software.split(separator: "/").last.map(String.init)
    }
    let clientID: String
    let loop: ClientLoop
    let connection: LoopBound<HostConnection>
    /// Opens another connection like this one (same client, destination and options).
    private let connectAgain: @Sendable (_ connectTimeout: Double?) async throws -> RemoteHost

    init(loop: ClientLoop, connection: LoopBound<HostConnection>, computerName: String, clientID: String,
         hostHello: Hello, protocolVersion: UInt16, connectAgain: @escaping @Sendable (_ connectTimeout: Double?) async throws -> RemoteHost) {
        self.loop = loop
        self.connection = connection
        self.computerName = computerName
        self.clientID = clientID
        self.hostHello = hostHello
        self.protocolVersion = protocolVersion
        self.connectAgain = connectAgain
    }

    /// A new connection to the same computer with the same client and options — after
    /// this one was lost (`.connectionLost`). This one is left as it is (close it if it
    /// is still up). Through the keeper, a lost link is dialled again. Fails as
    /// `connect` does (`.connection` while the host can't be reached). `connectTimeout`,
    /// if given, replaces the options' for this attempt (a retry loop with a deadline).
    ///
    /// The channel goes straight to the gateway socket this connection's hello named, so
    /// no login shell runs on the host; if that way is shut, through the subsystem.
    /// Throws `.remote(.versionMismatch)` — "refused: FEATURE needs protocol N (tether R
    /// or later); host H speaks protocol M (tether S)" — if this connection speaks a
    /// version older than `needed`. Call it before using a feature a host one release
    /// older lacks (docs/protocol.md, "Versions"); the host side refuses it too.
    public func requires(protocol needed: UInt16, for feature: String) throws(TetherClientError) {
        do {
            try TetherProtocol.requires(protocol: needed, for: feature, peer: "the host", speaks: protocolVersion)
        } catch {
            throw TetherClientError(.remote(.versionMismatch), host: computerName, error.message)
        }
    }

    public func reconnect(connectTimeout: Double? = nil) async throws -> RemoteHost {
        try await connectAgain(connectTimeout)
    }

    /// Sends a channel-0 request and returns the answer.
    func request(_ request: Request) async throws -> Response {
        let connection = self.connection
        return try await loop.await { done in
            connection.value.request(request) { done($0.mapError { $0 }) }
        }
    }

    private func sessionAnswer(_ response: Response, to what: String) throws -> SessionSummary {
        guard case .session(let info) = response else {
            throw TetherClientError(.protocolViolation, host: computerName, "unexpected answer to \(what): \(response)")
        }
        return SessionSummary(info: info, computerName: computerName, clientID: clientID)
    }

    /// Starts a new session (a runspace with a persistent interpreter); this client holds it.
    public func createSession(name: String? = nil, configuration: String? = nil, idleTimeout: Double? = nil,
                              outputBuffering: OutputBuffering? = nil, bufferLimit: Int? = nil,
                              jobLimit: Int? = nil) async throws -> RemoteSession {
        let response = try await request(.create(CreateRequest(
            name: name, configuration: configuration, idleTimeout: idleTimeout,
            outputBuffering: outputBuffering, bufferLimit: bufferLimit, jobLimit: jobLimit)))
        let summary = try sessionAnswer(response, to: "create")
        return RemoteSession(host: self, instanceID: summary.instanceID, name: summary.name, summary: summary)
    }

    /// The user's sessions on this computer (`name` may use `*` and `?`).
    public func sessions(filter: SessionFilter = SessionFilter()) async throws -> [SessionSummary] {
        let response = try await request(.list(filter))
        guard case .sessions(let infos) = response else {
            throw TetherClientError(.protocolViolation, host: computerName, "unexpected answer to list: \(response)")
        }
        return infos.map { SessionSummary(info: $0, computerName: computerName, clientID: clientID) }
    }

    /// The session configurations this user may use on the computer
    /// (PowerShell's Get-PSSessionConfiguration).
    public func configurations() async throws -> [ConfigurationInfo] {
        let response = try await request(.configurations)
        guard case .configurations(let list) = response else {
            throw TetherClientError(.protocolViolation, host: computerName, "unexpected answer to configurations: \(response)")
        }
        return list
    }

    /// Takes a session for this client (`tether connect`). Fails with `.remote(.heldElsewhere)`
    /// while another client holds it, unless `force`.
    public func claim(instanceID: String, force: Bool = false) async throws -> SessionSummary {
        try sessionAnswer(try await request(.claim(instanceID: instanceID, force: force)), to: "claim")
    }

    /// Lets go of a session (`tether disconnect`); it and its command go on on the host.
    public func release(instanceID: String, idleTimeout: Double? = nil,
                        outputBuffering: OutputBuffering? = nil) async throws -> SessionSummary {
        try sessionAnswer(try await request(.release(instanceID: instanceID, idleTimeout: idleTimeout,
                                                     outputBuffering: outputBuffering)), to: "release")
    }

    /// Ends a session's runspace and forgets it on the host. A session another client
    /// holds needs `force` (`held_elsewhere` otherwise), as `claim` does.
    public func remove(instanceID: String, force: Bool = false) async throws {
        _ = try await request(.remove(instanceID: instanceID, force: force))
    }

    public func ping() async throws {
        _ = try await request(.ping)
    }

    /// A handle to run commands in a session (attaches on first use).
    public func session(_ info: SessionInfo) -> RemoteSession {
        session(instanceID: info.instanceID, name: info.name)
    }

    public func session(instanceID: String, name: String = "") -> RemoteSession {
        RemoteSession(host: self, instanceID: instanceID, name: name)
    }

    /// Flushes what is queued (acknowledgements), ends the connection and waits for the
    /// host to close its side (at most a few seconds). Sessions stay on the host.
    public func close() async {
        let connection = self.connection
        _ = try? await loop.await { (done: @escaping (Result<Void, Error>) -> Void) in
            connection.value.closeGracefully { done(.success(())) }
        }
    }

    /// Session channels this connection has open now (for tests: cancelled work leaves none).
    var openChannelCount: Int {
        get async {
            let connection = self.connection
            return (try? await loop.run { connection.value.openChannelCount }) ?? 0
        }
    }

    /// Why the connection ended, if it has.
    public var closedError: TetherClientError? {
        get async {
            let connection = self.connection
            return try? await loop.run { connection.value.closedError }
        }
    }
}
