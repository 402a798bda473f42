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
    ///
    /// With `terminal` (e.g. `TerminalMode.request()`), the command runs on a
    /// pseudo-terminal on the host with that TERM and size, in the session's own shell:
    /// `stdin` carries keystrokes (typically `.fileDescriptor(0)` with the local terminal
    /// in `TerminalMode.enterRaw()`), everything the command writes arrives as stdout, and
    /// `resize(_:)` passes window changes on.
    ///
    /// `token` makes a retry safe: if this throws `.connectionLost` the request may or may
    /// not have started the command. Invoke again — on a new connection — with the same
    /// token (`RemoteSession.newInvokeToken()`) and the host either rejoins the command it
    /// started (output from its start, its status) or starts it now: never twice.
    public func invoke(_ script: String, arguments: [String] = [], stdin: StdinSource = .none,
                       wait: Bool = true, waitTimeout: Double? = nil,
                       token: UInt64? = nil, terminal: TerminalRequest? = nil) async throws -> Invocation {
        let channel = self.channel
        let request = InvokeRequest(script: script, arguments: arguments, stdin: !stdin.isNone,
                                    wait: wait, waitTimeout: waitTimeout, token: token, terminal: terminal)
        let core: CommandCore = try await loop.await { done in
            channel.value.invoke(request, stdin: stdin) { done($0.mapError { $0 }) }
        }
        let commandID = try await core.commandID.value
        return Invocation(session: self, core: core, commandID: commandID)
    }

    /// A fresh token for `invoke(…, token:)`: random, never 0.
    public static func newInvokeToken() -> UInt64 { UInt64.random(in: 1 ... .max) }

    /// Everything the session recorded that no client has received yet, then the live
    /// output of the command running now until it ends. Empty if there is nothing.
    public func receive(force: Bool = false) async throws -> Reception {
        try await receive(plan: ReceiveChannel.Plan(), force: force)
    }

    /// As `receive()`, but records up to `seq` are skipped even if the host still has
    /// them unacknowledged: they were handed to this process's consumer already (the
    /// host's acknowledged seq wins if it is higher).
    public func receive(after seq: UInt64, force: Bool = false) async throws -> Reception {
        try await receive(plan: ReceiveChannel.Plan(afterSeq: seq), force: force)
    }

    /// Picks up a command (or reception) whose connection was lost, on this handle's
    /// connection (usually a new one: `RemoteHost.reconnect()`): the output after
    /// `point.deliveredSeq`, live to the end of the followed command. The returned
    /// reception's `exitStatus` is that command's (nil if its end was received by
    /// another client meanwhile). If the command's stdin was being forwarded, it is
    /// closed now if the command still runs (see `ResumePoint.stdinInterrupted`).
    public func resume(from point: ResumePoint, force: Bool = false) async throws -> Reception {
        var plan = ReceiveChannel.Plan(afterSeq: point.deliveredSeq, exitStatusSoFar: point.exitStatusSoFar)
        switch (point.origin, point.commandID) {
        case (.invocation, let id?):
            plan.follow = .command(id)
            plan.awaitingStart = point.awaitingCommandStart
            plan.endStdin = point.stdinForwarded
        case (.reception, let id?):
            plan.follow = .command(id)
        case (_, nil):
            plan.follow = .none
            plan.endSeq = point.endSeq
        }
        return try await receive(plan: plan, force: force, origin: point.origin)
    }

    private func receive(plan: ReceiveChannel.Plan, force: Bool,
                         origin: ResumePoint.Origin = .reception) async throws -> Reception {
        let connection = host.connection
        let instanceID = self.instanceID
        let (info, core): (AttachInfo, ReceptionCore) = try await loop.await { done in
            let channel = ReceiveChannel(host: connection.value, instanceID: instanceID, plan: plan)
            channel.start(force: force) { result in
                done(result.mapError { $0 })
            }
        }
        return Reception(session: self, attachInfo: info, core: core, origin: origin)
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

    /// The window size of the running command's terminal (its program gets SIGWINCH);
    /// nothing happens if no command with a terminal runs.
    public func resize(_ size: TerminalSize) async throws {
        let channel = self.channel
        try await loop.await { (done: @escaping (Result<Void, Error>) -> Void) in
            channel.value.resize(size) { done($0.mapError { $0 }) }
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

    /// The seq of the last record handed to the consumer of `output` (0: none yet).
    public var lastDeliveredSeq: UInt64 { core.output.lastDeliveredSeq }

    /// Where to pick this command up after `output` threw a `.connectionLost` error:
    /// pass it to `resume(from:)` of the session on a new connection.
    public var resumePoint: ResumePoint {
        let stdin = core.stdinProgress
        return ResumePoint(origin: .invocation, instanceID: session.instanceID, sessionName: session.name,
                           commandID: commandID, deliveredSeq: lastDeliveredSeq,
                           stdinInterrupted: stdin == .forwarding, stdinForwarded: stdin != .none,
                           awaitingCommandStart: lastDeliveredSeq == 0)
    }

    /// Reads all output into memory and returns it with the exit status (small outputs).
    public func collect() async throws -> (stdout: [UInt8], stderr: [UInt8], exitStatus: Int32) {
        var out: [UInt8] = []
        var err: [UInt8] = []
        for try await chunk in output {
            switch chunk {
            case .stdout(let b): out += b
            case .stderr(let b): err += b
            case .dropped, .stream: break
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
    /// A resumed invocation (`resume(from:)` with an invocation's point) or a reception.
    public let origin: ResumePoint.Origin
    let core: ReceptionCore

    init(session: RemoteSession, attachInfo: AttachInfo, core: ReceptionCore, origin: ResumePoint.Origin) {
        self.session = session
        self.attachInfo = attachInfo
        self.core = core
        self.origin = origin
    }

    public var output: OutputSequence { OutputSequence(queue: core.output) }

    /// The seq of the last record handed to the consumer of `output` (0: none yet).
    public var lastDeliveredSeq: UInt64 { core.output.lastDeliveredSeq }

    /// Where to pick this reception up after `output` threw a `.connectionLost` error.
    /// Stdin is never resumed: a resumed invocation's stdin was closed when it resumed.
    public var resumePoint: ResumePoint {
        let progress = core.progress
        return ResumePoint(origin: origin, instanceID: session.instanceID, sessionName: session.name,
                           commandID: progress.followedCommand, deliveredSeq: lastDeliveredSeq,
                           endSeq: progress.endSeq, exitStatusSoFar: progress.exitStatusSoFar,
                           awaitingCommandStart: progress.awaitingStart)
    }

    /// The followed command's exit status, else that of the last command that ended in
    /// the replay; nil if none ended in what was received.
    public var exitStatus: Int32? {
        get async throws { try await core.outcome.value.exitStatus }
    }

    /// A resumed invocation whose forwarded stdin had not fully arrived when the old
    /// connection was lost: the resume closed it, so the command saw end of file early
    /// and may have worked on an incomplete input. (False if the host had the input's
    /// end already, or the command ended by itself meanwhile.)
    public var stdinCut: Bool { core.progress.stdinCut }

    /// Set if the session ended (interpreter exited, or broke) during the reception.
    public var sessionEnded: String? {
        get async throws { try await core.outcome.value.sessionEnded }
    }
}
