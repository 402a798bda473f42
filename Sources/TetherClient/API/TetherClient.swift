import TetherIO
import TetherProtocol
import TetherSSH

/// The entry point: this machine's client identity and the connections it opens.
///
/// ```swift
/// let client = try TetherClient()
/// let host = try await client.connect("web1")
/// let session = try await host.createSession(name: "deploy")
/// let run = try await session.invoke("cd /srv && git pull")
/// for try await chunk in run.output { … }
/// print(try await run.exitStatus)
/// ```
public final class TetherClient: Sendable {
    public let home: ClientHome
    /// This client's stable id (from `client.json`): hosts record who holds a session by it.
    public let clientID: String
    /// This machine's name, shown to other clients ("held by laptop since …").
    public let clientHost: String
    /// Whether connections go through the client keeper (warm shared SSH connections).
    public let keeper: KeeperUse
    let loop: ClientLoop

    public init(home: ClientHome = .default, keeper: KeeperUse = .never) throws {
        self.home = home
        self.clientID = try home.clientID()
        self.clientHost = Environment.hostName()
        self.keeper = keeper
        self.loop = ClientLoop.shared
    }

    /// The client's event-loop thread as a task executor. Code that awaits the library in a
    /// tight loop (many short commands) can run there —
    /// `try await withTaskExecutorPreference(client.taskExecutor) { … }` — and skip the
    /// two thread hops every await otherwise takes. Never block in such a task: every
    /// connection of the process waits for it.
    public var taskExecutor: any TaskExecutor { loop }

    /// Stops the client's event loop thread; every connection is dead afterwards. Call it
    /// right before a process exits (the CLI does): libssh2 may still be finishing a close
    /// on the loop, and that must not run while `exit()` tears down OpenSSL. Idempotent;
    /// a no-op if no client was ever made.
    public static func shutdownEventLoop() {
        guard ClientLoop.isStarted else { return }
        ClientLoop.shared.shutdown()
    }

    /// The linked libssh2's version ("1.10.0"), and the headers' when they differ.
    public static var libssh2Version: String {
        let linked = SSHLibrary.version
        let built = SSHLibrary.headerVersion
        return linked == built ? linked : "\(linked), built with \(built)"
    }

    /// What `destination` resolves to, as `ssh -G` prints it, followed by comment lines
    /// saying which transport Tether would use and why (`tether new HOST -G`). Connects
    /// to nothing.
    public static func resolvedConfiguration(_ destination: String, options: ConnectionOptions = ConnectionOptions()) throws -> String {
        var quiet = options
        quiet.verbosity = 0
        let resolution = try ConnectionPlan.resolve(destination, options: quiet)
        var text = resolution.config?.text ?? "# resolved by Tether's own parser (no ssh in PATH): \(resolution.target)\n"
        switch options.effectiveTransport {
        case .openssh:
            text += "# tether transport: openssh (forced)\n"
        case .libssh2:
            text += "# tether transport: libssh2 (forced)\n"
        case .auto:
            let reasons = LibSSH2Limits.reasons(target: resolution.target, config: resolution.config)
            if reasons.isEmpty {
                text += "# tether transport: libssh2\n"
            } else {
                text += "# tether transport: openssh, because:\n" + reasons.map { "#   \($0)\n" }.joined()
            }
        }
        return text
    }

    /// Opens a connection to `destination` (an ssh config alias or `[user@]host`) and
    /// completes the Tether handshake. Each call opens a new connection. `credentials`:
    /// a passphrase provider, a host key decision and in-memory keys of the program's own
    /// (see `ConnectionCredentials`). Cancelling the calling task stops the connect.
    public func connect(_ destination: String, options: ConnectionOptions = ConnectionOptions(),
                        credentials: ConnectionCredentials = ConnectionCredentials()) async throws -> RemoteHost {
        let hello = Hello(role: .client, clientID: clientID, clientHost: clientHost,
                          software: "tether/\(tetherReleaseVersion)", hostname: clientHost, user: Environment.userName())
        let reactor = loop.reactor
        let keeper = self.keeper
        let home = self.home
        let plan: ConnectionPlan
        do {
            plan = try ConnectionPlan.make(destination: destination, options: options)
        } catch let error as TetherClientError {
            throw error.on(host: destination)
        }
        if !credentials.isEmpty, case .openssh = plan.route {
            let reasons = plan.resolution.map { LibSSH2Limits.reasons(target: $0.target, config: $0.config) } ?? []
            let why = options.effectiveTransport == .openssh || reasons.isEmpty ? "the OpenSSH transport is forced"
                : "this destination needs OpenSSH's ssh (\(reasons[0]))"
            throw TetherClientError(.usage, host: destination,
                "passphrase providers, host key decisions and in-memory keys work with the libssh2 transport only, but \(why)")
        }
        try Task.checkCancellation()
        let attempt = ConnectAttempt()
        let (connection, hostHello, version) = try await withTaskCancellationHandler {
            try await loop.await { (done: @escaping (Result<(LoopBound<HostConnection>, Hello, UInt16), Error>) -> Void) in
                attempt.done = done
                guard !attempt.cancelled else { return attempt.finish(.failure(CancellationError())) }
                let transport = TransportFactory.make(reactor: reactor, plan: plan, keeper: keeper, hello: hello, home: home,
                                                      credentials: credentials)
                let connection = HostConnection(reactor: reactor, computerName: destination, transport: transport,
                                                clientHello: hello, handshakeTimeout: options.handshakeTimeout)
                attempt.connection = connection
                connection.start { result in
                    attempt.finish(result.map { (LoopBound(connection), $0, connection.protocolVersion) }.mapError { $0 })
                }
            }
        } onCancel: {
            reactor.execute { attempt.cancel(destination: destination) }
        }
        if options.verbosity > 0 {
            // -v: which release answered, and which protocol the hello settled on.
            SSHNotice.printToStandardError("\(destination): host: \(hostHello.software.split(separator: "/").joined(separator: " ")), protocol \(version) (speaks up to \(hostHello.newestProtocol ?? version)); this client: tether \(tetherReleaseVersion), protocol \(ProtocolRange.ours)")
        }
        // Connecting again, we know the host's gateway: a resume skips the login shell.
        var again = options
        again.gatewaySocket = hostHello.gateway ?? options.gatewaySocket
        return RemoteHost(loop: loop, connection: connection, computerName: destination,
                          clientID: clientID, hostHello: hostHello, protocolVersion: version,
                          connectAgain: { [self, again] timeout in
                              var options = again
                              if let timeout { options.connectTimeout = timeout }
                              return try await self.connect(destination, options: options, credentials: credentials)
                          })
    }
}

/// A `connect` on its way, so cancelling the awaiting task can stop it: the transport
/// is closed (the ssh process, the socket, libssh2's session) and `connect` throws
/// `CancellationError` at once. Loop-confined.
private final class ConnectAttempt: @unchecked Sendable {
    var done: ((Result<(LoopBound<HostConnection>, Hello, UInt16), Error>) -> Void)?
    var connection: HostConnection?
    var cancelled = false

    func finish(_ result: Result<(LoopBound<HostConnection>, Hello, UInt16), Error>) {
        guard let done else { return }
        self.done = nil
        connection = nil
        done(result)
    }

    /// A connection that already answered is the caller's: only one still connecting stops.
    func cancel(destination: String) {
        cancelled = true
        guard done != nil else { return }
        let connecting = connection
        finish(.failure(CancellationError()))
        connecting?.shutdown(TetherClientError(.connection, host: destination, "connect cancelled"))
    }
}
