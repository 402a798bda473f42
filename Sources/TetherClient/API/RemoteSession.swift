import TetherIO
import TetherProtocol

/// One session on a connected host: runs commands on one attachment, and receives.
public final class RemoteSession: Sendable {
    public let host: RemoteHost
    public let instanceID: String
    public let name: String
    /// What the host said about the session when this handle was made (create), if known.
    public let summary: SessionSummary?
    let channel: LoopBound<SessionChannel>

    init(host: RemoteHost, instanceID: String, name: String, summary: SessionSummary? = nil) {
        self.host = host
        self.instanceID = instanceID
        self.name = name
        self.summary = summary
        // Built on any thread, but touched only on the loop from here on.
        self.channel = LoopBound(SessionChannel(host: host.connection.value, instanceID: instanceID))
    }

    private var loop: ClientLoop { host.loop }

    /// Attaches (claims) explicitly; `invoke` does it on demand. `force` takes the
    /// session from another client.
    @discardableResult
    public func attach(force: Bool = false) async throws -> AttachInfo {
        let channel = self.channel
        return try await loop.await { done in
            channel.value.attach(force: force) { done($0.mapError { $0 }) }
        }
    }

    /// Runs `script` in the session's interpreter (`"$@"` are `arguments`). Returns once
    /// the command started; read `output` to its end, then `exitStatus`.
    /// `wait: false` fails at once with `.remote(.busy)` if another command runs.
    public func invoke(_ script: String, arguments: [String] = [], stdin: StdinSource = .none,
                       wait: Bool = true, waitTimeout: Double? = nil) async throws -> Invocation {
        let channel = self.channel
        let request = InvokeRequest(script: script, arguments: arguments, stdin: !stdin.isNone,
                                    wait: wait, waitTimeout: waitTimeout)
        let core: CommandCore = try await loop.await { done in
            channel.value.invoke(request, stdin: stdin) { done($0.mapError { $0 }) }
        }
        let commandID = try await core.commandID.value
        return Invocation(session: self, core: core, commandID: commandID)
    }

    /// Everything the session recorded that no client has received yet, then the live
    /// output of the command running now until it ends. Empty if there is nothing.
    public func receive(force: Bool = false) async throws -> Reception {
        let connection = host.connection
        let instanceID = self.instanceID
        let (info, core): (AttachInfo, ReceptionCore) = try await loop.await { done in
            let channel = ReceiveChannel(host: connection.value, instanceID: instanceID)
            channel.start(force: force) { result in
                done(result.mapError { $0 })
            }
        }
        return Reception(session: self, attachInfo: info, core: core)
    }

    /// Unbinds this attachment; the session (and any command) goes on on the host.
    public func detach() async throws {
        let channel = self.channel
        try await loop.await { (done: @escaping (Result<Void, Error>) -> Void) in
            channel.value.detach { done($0.mapError { $0 }) }
        }
    }

    /// SIGINT to the running command's process group (like Ctrl-C in a terminal).
    public func interrupt() async throws {
        let channel = self.channel
        try await loop.await { (done: @escaping (Result<Void, Error>) -> Void) in
            channel.value.interrupt { done($0.mapError { $0 }) }
        }
    }
}

/// A command started with `invoke`.
public final class Invocation: Sendable {
    public let session: RemoteSession
    public let commandID: UInt64
    let core: CommandCore

    init(session: RemoteSession, core: CommandCore, commandID: UInt64) {
        self.session = session
        self.core = core
        self.commandID = commandID
    }

    /// stdout, stderr and drop notices in the order the host recorded them. Consume it:
    /// unread output holds up the connection (by design: backpressure, not memory).
    public var output: OutputSequence { OutputSequence(queue: core.output) }

    /// The exit status (128+N if killed by signal N). Throws if the connection or the
    /// session ended first. Resolves only as the output is read.
    public var exitStatus: Int32 {
        get async throws { try await core.exit.value }
    }

    /// SIGINT to the command's process group.
    public func interrupt() async throws {
        try await session.interrupt()
    }

    /// Reads all output into memory and returns it with the exit status (small outputs).
    public func collect() async throws -> (stdout: [UInt8], stderr: [UInt8], exitStatus: Int32) {
        var out: [UInt8] = []
        var err: [UInt8] = []
        for try await chunk in output {
            switch chunk {
            case .stdout(let b): out += b
            case .stderr(let b): err += b
            case .dropped: break
            }
        }
        return (out, err, try await exitStatus)
    }
}

/// What `receive` collects: replay, then live output of the command running at attach.
public final class Reception: Sendable {
    public let session: RemoteSession
    /// The runspace's position at attach (acked and last sequence numbers, running command).
    public let attachInfo: AttachInfo
    let core: ReceptionCore

    init(session: RemoteSession, attachInfo: AttachInfo, core: ReceptionCore) {
        self.session = session
        self.attachInfo = attachInfo
        self.core = core
    }

    public var output: OutputSequence { OutputSequence(queue: core.output) }

    /// The followed command's exit status, else that of the last command that ended in
    /// the replay; nil if none ended in what was received.
    public var exitStatus: Int32? {
        get async throws { try await core.outcome.value.exitStatus }
    }

    /// Set if the session ended (interpreter exited, or broke) during the reception.
    public var sessionEnded: String? {
        get async throws { try await core.outcome.value.sessionEnded }
    }
}
