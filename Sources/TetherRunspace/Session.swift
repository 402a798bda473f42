import Glibc
import TetherConfiguration
import TetherIO
import TetherProtocol

/// The session a runspace host exists for: its interpreter, its output journal, the
/// channels attached to it and the registry's control connections. Everything runs on the
/// process's one Reactor thread.
///
/// The parts live in extensions: channels and delivery (`Session+Channels`), commands
/// (`Session+Commands`), the end of the process (`Session+Shutdown`).
final class Session {
    /// The session's life, as the registry and clients see it.
    enum Life: Equatable {
        case running
        /// bash exited (`exit` in a command, or `signal terminate`).
        case closed(exitCode: Int32, reason: String)
        /// bash died abnormally (killed by a signal nobody here sent).
        case broken(exitCode: Int32, reason: String)
    }

    /// The command bash is running now.
    final class RunningCommand {
        let id: UInt64
        /// The channel that invoked it, while attached.
        weak var origin: Attachment?
        let startedAt = Reactor.now()
        /// The seq of its `commandStarted`.
        var startSeq: UInt64 = 0
        let stdin: StdinFeeder?
        /// The invoke's token, if the client gave one (see `InvokeToken`).
        let token: UInt64?
        /// The pseudo-terminal of a command run with one (stdin frames are keystrokes).
        let terminal: CommandTerminal?
        /// What its transcript lines say about it (`Transcript yes` only).
        var transcriptLine: String?
        /// A connection paused because the stdin queue is full.
        weak var pausedSender: PeerConnection?
        init(id: UInt64, origin: Attachment, stdin: StdinFeeder?, token: UInt64?, terminal: CommandTerminal? = nil) {
            self.id = id
            self.origin = origin
            self.stdin = stdin
            self.token = token
            self.terminal = terminal
        }
    }

    /// A command that ended, while its output may still be on its way to its invoker.
    struct EndedCommand {
        let records: ClosedRange<UInt64>
        weak var origin: Attachment?
    }

    /// What became of an invoke that carried a token: the command it started and where
    /// its records are, so a retry of the same invoke rejoins it instead of running it again.
    struct InvokeToken {
        var commandID: UInt64
        /// Its `commandStarted` seq, and its `commandEnded` seq once it ended.
        var startSeq: UInt64
        var endSeq: UInt64?
    }

    /// An `invoke` with `wait` that waits for the running command to end.
    final class WaitingInvoke {
        let request: InvokeRequest
        /// A retry of the same invoke (same token) takes the entry over: answer it there.
        var requestID: UInt32
        var origin: Attachment
        var timer: TimerHandle?
        init(request: InvokeRequest, requestID: UInt32, origin: Attachment) {
            self.request = request
            self.requestID = requestID
            self.origin = origin
        }
    }

    let options: RunspaceOptions
    /// The host admin's settings for this session (kind, Command rules, Transcript…).
    let configuration: SessionConfiguration
    /// `Transcript yes`: where each command is recorded.
    let transcript: Transcript?
    let reactor: Reactor
    let workDirectory: WorkDirectory
    var interpreter: (any Interpreter)!
    var listener: UnixListener?

    var journal = Journal()
    /// Jobs (`Jobs/`): copies of the shell running beside the foreground commands.
    let jobTable: JobTable
    var life = Life.running
    var outputBuffering: OutputBuffering
    var bufferLimit: Int
    /// What the registry said the idle timeout is (for `describe`; the registry applies it).
    var idleTimeout: Double?
    /// The newest `dropped` record sent to any channel: it, and any before it, is never
    /// enlarged (its reader would count twice); a later, unsent one grows instead, so one
    /// stretch nobody read gives one notice.
    var highestSentDroppedSeq: UInt64 = 0

    var peers: [ObjectIdentifier: PeerConnection] = [:]
    var peerCount = 0
    var running: RunningCommand?
    var waiting: [WaitingInvoke] = []
    /// Ended commands whose records nobody acknowledged yet: while the invoker is still
    /// attached they are its, on their way, not output for the next invoker to show.
    var endedCommands: [EndedCommand] = []
    /// Recent invoke tokens, oldest first in `tokenOrder` (at most `rememberedTokens`).
    var invokeTokens: [UInt64: InvokeToken] = [:]
    var tokenOrder: [UInt64] = []
    /// Enough for every retry a client could still be making: a client retries one
    /// invoke at a time per session, within its reconnect timeout.
    static let rememberedTokens = 256
    var nextCommandID: UInt64 = 1
    let createdAt = WallClock.now()
    var lastUsedAt = WallClock.now()

    /// `terminate` was asked for: bash is being ended, its exit closes the session.
    var terminating = false
    /// The process is on its way out (registry's terminate or our own SIGTERM).
    var shuttingDown = false
    var groupKilled = false
    var idleTrimTimer: TimerHandle?
    /// A pending report of a `busy` change (see `publishStatus`).
    var statusReportTimer: TimerHandle?
    /// This runspace host's pid (it never forks a copy of itself that would need another).
    static let processID = getpid()
    /// How long a command must run before the registry hears that the session is busy.
    static let busyReportDelay: Double = 0.05
    static let idleTrimDelay: Double = 1

    /// bash is up: the host reports "ok" to the registry.
    var onReady: () -> Void = {}
    /// bash died before it was ready: the host reports the error and exits.
    var onStartFailure: (String) -> Void = { _ in }

    init(options: RunspaceOptions, reactor: Reactor, workDirectory: WorkDirectory,
         configuration: SessionConfiguration = .builtIn) {
        self.options = options
        self.configuration = configuration
        transcript = configuration.transcript
            ? Transcript(socketPath: options.paths.syslogSocket ?? Transcript.defaultSocket) : nil
        self.reactor = reactor
        self.workDirectory = workDirectory
        outputBuffering = options.outputBuffering
        bufferLimit = options.bufferLimit
        idleTimeout = options.idleTimeout
        jobTable = JobTable(limit: options.jobLimit)
    }

    /// Spawns bash. Call once, after `listen`, before the reactor runs.
    func startInterpreter(executable: String, startupScript: String? = nil) throws {
        jobTable.bashPath = executable
        let streams = try workDirectory.makeStreamFiles(reactor: reactor, bash: executable)
        wire(try BashInterpreter(reactor: reactor, executable: executable,
                                 arguments: ["bash", "--noprofile", "--norc"],
                                 workDirectory: workDirectory.path, startupScript: startupScript,
                                 streams: streams, streamCommands: workDirectory.commandsPath))
    }

    /// Connects the interpreter's events to the session. Call once, before the reactor runs.
    func wire(_ interpreter: any Interpreter) {
        self.interpreter = interpreter
        interpreter.mayReadOutput = { [unowned self] in self.mayReadOutput() }
        interpreter.onReady = { [unowned self] in
            self.onReady()
            if !self.startPendingJobs() { self.startNextWaiting() }
        }
        interpreter.onOutput = { [unowned self] kind, bytes in self.emit(kind, body: bytes) }
        interpreter.onCommandStarted = { [unowned self] in self.running?.stdin?.bashOpened() }
        interpreter.onCommandFinished = { [unowned self] status in self.commandFinished(status: status) }
        interpreter.onExit = { [unowned self] status in self.interpreterExited(status) }
        interpreter.onGroupKilled = { [unowned self] in
            self.groupKilled = true
            self.continueShutdown()
        }
        interpreter.updateReading()
    }

    /// Starts accepting connections on the session's socket.
    func listen() throws {
        listener = try UnixListener(reactor: reactor, path: options.paths.runspaceSocket(options.instanceID),
                                    onAccept: { [unowned self] fd in self.accept(fd) })
    }

    private func accept(_ fd: Int32) {
        guard !shuttingDown else {
            close(fd)
            return
        }
        peerCount += 1
        let peer = PeerConnection(session: self, reactor: reactor, fd: fd, number: peerCount)
        peers[ObjectIdentifier(peer)] = peer
        peer.start()
    }

    // MARK: Child processes

    /// SIGCHLD: reap every child that exited — bash, and (as the subreaper) background
    /// jobs of the session that outlived their parent.
    func reapChildren() {
        var status: Int32 = 0
        var reapedAny = false
        while true {
            let pid = waitpid(-1, &status, WNOHANG)
            if pid < 0 && errno == EINTR { continue }
            guard pid > 0 else { break }
            reapedAny = true
            if pid == interpreter.pid {
                interpreter.reaped(ExitStatus(waitStatus: status))
            } else {
                childReaped(pid: pid, status: ExitStatus(waitStatus: status))
            }
        }
        // The last of bash's group may just have gone: a shutdown can go on.
        if reapedAny && shuttingDown { continueShutdown() }
    }

    // MARK: Records

    /// Journals a new record and sends it to every channel that wants it now.
    @discardableResult
    func emit(_ kind: Record.Kind, body: [UInt8]) -> Record {
        let record = journal.append(kind, body: body)
        if kind.isOutput { dropUnreadOutputToFit() }
        pumpAll()
        return record
    }

    /// `drop` buffering, while nobody reads: discards the oldest output until the journal
    /// fits the limit. While a channel reads live output, `drop` holds bash back as `block`
    /// does (`mayReadOutput`): what a reader is reading is never thrown away, and one
    /// unread stretch ends up as one `dropped` record with the total.
    func dropUnreadOutputToFit() {
        guard outputBuffering == .drop, !hasLiveReader, journal.heldBytes > bufferLimit else { return }
        // Body bytes to fit, leaving room for the records' own cost (an estimate that errs
        // on keeping less: dropping also removes records).
        let bodyRoom = max(0, bufferLimit - journal.count * Journal.recordCost)
        journal.dropOldestOutput(toFit: bodyRoom, sentThrough: highestSentDroppedSeq)
    }

    /// Some channel wants the output produced now: a `receive`, or the invoker of the
    /// running command.
    var hasLiveReader: Bool {
        peers.values.contains { peer in peer.attachments.values.contains { $0.isLive } }
    }

    func pumpAll() {
        for peer in peers.values {
            for attachment in peer.attachments.values { pump(attachment) }
        }
    }

    /// Sends `attachment` what it is owed from the journal, until its connection backs up
    /// or its window is full (it then waits for its own acks; the journal keeps the rest).
    func pump(_ attachment: Attachment) {
        let connection = attachment.peer.connection
        while !connection.isClosed && !connection.isBackedUp && attachment.window.isOpen,
              let record = journal.first(atOrAfter: attachment.nextSeq) {
            if attachment.wants(record) {
                attachment.peer.send(record, channel: attachment.channel)
                if record.kind == .dropped { highestSentDroppedSeq = max(highestSentDroppedSeq, record.seq) }
                attachment.window.sent(seq: record.seq, bodyBytes: record.body.count)
            }
            attachment.advance(past: record.seq)
        }
    }

    /// Whether bash's output may be read now. Not while the journal is full in `block` mode,
    /// or in `drop` mode while someone reads (the command then blocks in write(2) until
    /// acks make room), nor while a channel that
    /// wants live output is backed up (it catches up first; nothing piles up here).
    func mayReadOutput() -> Bool {
        // On the way out, bash's last output is read so its end can be reported.
        if shuttingDown { return true }
        if journal.heldBytes >= bufferLimit && (outputBuffering == .block || hasLiveReader) { return false }
        for peer in peers.values where peer.connection.isBackedUp {
            if peer.attachments.values.contains(where: { $0.isLive }) { return false }
        }
        return true
    }

    // MARK: Status

    var hostState: HostSessionState {
        switch life {
        case .running: .running
        case .closed: .closed
        case .broken: .broken
        }
    }

    var lifeReason: String? {
        switch life {
        case .running: nil
        case .closed(_, let reason), .broken(_, let reason): reason
        }
    }

    var lifeExitCode: Int32? {
        switch life {
        case .running: nil
        case .closed(let code, _), .broken(let code, _): code
        }
    }

    /// The client with channels attached here now, if any: it holds the session (attaching
    /// claims it). Who holds a session nobody is attached to only the registry knows.
    var attachedHolder: Holder? {
        peers.values
            .filter { $0.role == .subsystem && !$0.attachments.isEmpty }
            .compactMap { peer in peer.clientID.map { Holder(clientID: $0, clientHost: peer.clientHost ?? "unknown", since: peer.attachedSince ?? WallClock.now()) } }
            .min { $0.since < $1.since }
    }

    var attachmentCount: Int {
        peers.values.reduce(0) { $0 + $1.attachments.count }
    }

    var status: RunspaceStatus {
        // Running jobs keep the session busy too: it is not idle (no idle timeout) while they run.
        RunspaceStatus(instanceID: options.instanceID, state: hostState, busy: running != nil || jobTable.activeCount > 0,
                       attachments: attachmentCount, pid: Session.processID, reason: lifeReason, exitCode: lifeExitCode)
    }

    var info: SessionInfo {
        SessionInfo(instanceID: options.instanceID, name: options.name, configuration: options.configuration,
                    state: hostState, holder: attachedHolder, busy: running != nil, createdAt: createdAt,
                    lastUsedAt: lastUsedAt, idleTimeout: idleTimeout ?? 0, outputBuffering: outputBuffering,
                    bufferLimit: bufferLimit, reason: lifeReason, exitCode: lifeExitCode,
                    runspacePID: Session.processID)
    }

    /// Sends the registry's control connections the status, if it changed. A change of
    /// `busy` alone waits `busyReportDelay` (and is dropped if it flipped back meanwhile):
    /// a loop of short commands would otherwise cost two JSON events and two registry
    /// wake-ups per command, on a host whose cores are busy running exactly those commands.
    /// Every other change goes out at once, carrying the current `busy` with it.
    func publishStatus() {
        let onlyBusyChanged = sendStatus(holdingBackBusy: true)
        if onlyBusyChanged && statusReportTimer == nil {
            statusReportTimer = reactor.schedule(after: Session.busyReportDelay) { [unowned self] in
                self.statusReportTimer = nil
                self.sendStatus(holdingBackBusy: false)
            }
        }
    }

    /// Sends the current status to each registry connection that hasn't seen it; with
    /// `holdingBackBusy`, not to those whose last status differs only in `busy`. Returns
    /// whether any was held back.
    @discardableResult
    private func sendStatus(holdingBackBusy: Bool) -> Bool {
        let current = status
        var heldBack = false
        for peer in peers.values where peer.role == .registry && peer.lastStatus != current {
            if holdingBackBusy, let last = peer.lastStatus, last.sameExceptBusy(as: current) {
                heldBack = true
                continue
            }
            peer.lastStatus = current
            peer.send(.status(current), channel: 0)
        }
        return heldBack
    }
}

extension RunspaceStatus {
    func sameExceptBusy(as other: RunspaceStatus) -> Bool {
        var copy = other
        copy.busy = busy
        return copy == self
    }
}

/// Seconds since 1970, for `SessionInfo` times.
enum WallClock {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
