import TetherIO
import TetherProtocol

/// A `receive` attachment: replays everything the session recorded that no client has
/// acknowledged, then follows the command running at attach time to its end (or stops
/// at the last record if none runs). Loop-confined; detaches itself when done.
final class ReceiveChannel: ChannelEndpoint {
    /// What a reception ends with.
    struct Outcome: Sendable {
        /// The exit status of the followed command, else of the last command that ended
        /// in the replay; nil if no command ended in what was received.
        var exitStatus: Int32?
        /// Set if the session itself ended (its interpreter exited or it broke).
        var sessionEnded: String?
    }

    /// Where a reception starts and what it follows. The default is a plain `receive`:
    /// everything not acknowledged, then the command running at attach.
    struct Plan: Sendable {
        /// Records up to this seq were handed to a consumer already (a resume): they are
        /// skipped even if their acknowledgement never reached the host.
        var afterSeq: UInt64 = 0
        /// Which command to follow to its end.
        enum Follow: Sendable {
            /// The one running at attach (a plain receive).
            case runningAtAttach
            /// This one (a resume); if it ended meanwhile, to its end in the journal.
            case command(UInt64)
            /// None: end at `endSeq` (resuming a reception that followed none).
            case none
        }
        var follow = Follow.runningAtAttach
        /// The command a resume follows, if any.
        var resumedCommand: UInt64? {
            if case .command(let id) = follow { return id }
            return nil
        }
        /// Without a command to follow, end at this seq rather than the last at attach.
        var endSeq: UInt64?
        /// Resuming an invocation of which nothing was delivered yet: the command's start
        /// is still ahead; output before it (background jobs') is shown, as the invoke
        /// channel shows it, since this channel's acknowledgement covers it.
        var awaitingStart = false
        /// The exit status carried over from before the resume.
        var exitStatusSoFar: Int32?
        /// Send `stdinEOF` if the followed command still runs: its forwarded stdin was cut.
        var endStdin = false
    }

    let host: HostConnection
    let instanceID: String
    private let plan: Plan
    private(set) var number: UInt32 = 0
    private var sequencer = RecordSequencer(after: 0, strict: true)
    private var core: ReceptionCore?
    private var followedCommand: UInt64?
    private var stopAtSeq: UInt64 = 0
    /// Following a command that had already ended at attach (a resume): if its end isn't
    /// in the journal any more (another client received it), stop here, status unknown.
    private var giveUpAtSeq: UInt64?
    private var awaitingStart = false
    private var lastExit: Int32?
    private var active = false

    init(host: HostConnection, instanceID: String, plan: Plan = Plan()) {
        self.host = host
        self.instanceID = instanceID
        self.plan = plan
    }

    func start(force: Bool, _ completion: @escaping (Result<(AttachInfo, ReceptionCore), TetherClientError>) -> Void) {
        if let error = host.closedError { completion(.failure(error)); return }
        let core = ReceptionCore(output: makeQueue())
        self.core = core
        number = host.openChannel(self)
        active = true
        host.request(.attach(instanceID: instanceID, force: force, receive: true), channel: number) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(.attached(let info)):
                let plan = self.plan
                let start = max(info.ackedSeq, plan.afterSeq)
                self.sequencer = RecordSequencer(after: start, strict: true)
                switch plan.follow {
                case .runningAtAttach: self.followedCommand = info.runningCommandID
                case .command(let id): self.followedCommand = id
                case .none: self.followedCommand = nil
                }
                self.stopAtSeq = plan.endSeq ?? info.lastSeq
                self.lastExit = plan.exitStatusSoFar
                self.awaitingStart = plan.awaitingStart
                if let resumed = plan.resumedCommand, info.runningCommandID != resumed { self.giveUpAtSeq = info.lastSeq }
                core.progress = .init(followedCommand: self.followedCommand, endSeq: self.stopAtSeq,
                                      exitStatusSoFar: self.lastExit, awaitingStart: self.awaitingStart)
                core.output.assumeDelivered(through: start)
                if start > info.ackedSeq {
                    // Delivered before the cut, but the acks were lost with the link: the
                    // host replays those records and they are dropped here as repeats. Say
                    // so now — unacknowledged, a window's worth of repeats (the whole window
                    // was in flight at the cut) would close the channel's flow-control
                    // window for good, and the rest of the output would never come.
                    self.host.send(Frame(type: .ack, channel: self.number, payload: ControlCodec.ack(start)))
                }
                if plan.endStdin, let resumed = plan.resumedCommand, info.runningCommandID == resumed,
                   info.stdinEnded != true {
                    // Stdin can't be resumed (bytes in flight may or may not have arrived):
                    // the command gets end of file rather than waiting forever — and
                    // may have read an incomplete input, which the caller must hear.
                    self.host.send(Frame(type: .stdinEOF, channel: self.number))
                    core.progress.stdinCut = true
                }
                completion(.success((info, core)))
                // Nothing to replay and nothing to follow: the reception is empty.
                if self.followedCommand == nil && self.stopAtSeq <= start { self.end() }
                if let giveUp = self.giveUpAtSeq, giveUp <= start { self.end() }
            case .success(let other):
                let error = TetherClientError(.protocolViolation, host: self.host.computerName, "unexpected answer to attach: \(other)")
                self.fail(error)
                completion(.failure(error))
            case .failure(let error):
                self.fail(error)
                completion(.failure(error))
            }
        }
    }

    private func makeQueue() -> OutputQueue {
        let reactor = host.reactor
        let bound = LoopBound(self)
        return OutputQueue(
            pause: { [weak self] in
                guard let self else { return }
                self.host.pauseReading(for: self)
            },
            requestResume: { queue in
                reactor.execute {
                    let channel = bound.value
                    queue.resumeIfDrained { channel.host.resumeReading(for: channel) }
                }
            },
            sendAck: { seq in
                reactor.execute {
                    let channel = bound.value
                    channel.host.send(Frame(type: .ack, channel: channel.number, payload: ControlCodec.ack(seq)))
                }
            },
            consumerReachedEnd: {
                // Only now: acks travel on this channel, so it must stay attached until
                // the consumer has taken (and acknowledged) the last record.
                reactor.execute { bound.value.detachIfDone() }
            },
            consumerCancelled: {
                reactor.execute { bound.value.abandon() }
            },
            wakeAfterTurn: { reactor.execute($0) })
    }

    /// The consuming task was cancelled: stop following and detach now. What was not
    /// consumed stays unacknowledged on the host, for the next receive.
    private func abandon() {
        if active, let core {
            active = false
            host.resumeReading(for: self)
            core.outcome.resolve(.failure(CancellationError()))
            core.output.finish(.failure(CancellationError()))
        }
        detachIfDone()
    }

    func deliver(_ record: Record) {
        guard active, let core else { return }
        do {
            guard try sequencer.check(record) == .accept else { return }
        } catch {
            fail(error.on(host: host.computerName))
            return
        }
        let queue = core.output
        // Output before the followed command's start (background jobs between commands)
        // is shown like the rest: this channel's acknowledgement covers it.
        if awaitingStart, record.kind == .commandStarted, (try? record.commandID()) == followedCommand {
            awaitingStart = false
            core.progress.awaitingStart = false
        }
        switch record.kind {
        case .commandStarted:
            queue.push(.init(seq: record.seq, chunk: nil, ackNow: false))
        case .stdout:
            queue.push(.init(seq: record.seq, chunk: .stdout(record.body), ackNow: false))
        case .stderr:
            queue.push(.init(seq: record.seq, chunk: .stderr(record.body), ackNow: false))
        case .dropped, .warning, .verbose, .information, .progress:
            queue.push(.init(seq: record.seq, chunk: OutputChunk(record), ackNow: false))
        case .commandEnded:
            queue.push(.init(seq: record.seq, chunk: nil, ackNow: true))
            let isFollowed = followedCommand != nil && (try? record.commandID()) == followedCommand
            // Resuming a command: another command's end is not its status.
            if plan.resumedCommand == nil || isFollowed { lastExit = try? record.exitStatus() }
            core.progress.exitStatusSoFar = lastExit
            if isFollowed {
                end()
                return
            }
        case .sessionClosed:
            queue.push(.init(seq: record.seq, chunk: nil, ackNow: true))
            let info = try? record.closedInfo()
            if followedCommand != nil || lastExit == nil { lastExit = info?.exitCode }
            end(sessionEnded: "the session closed: \(info?.reason ?? "interpreter exited")")
            return
        case .sessionBroken:
            queue.push(.init(seq: record.seq, chunk: nil, ackNow: true))
            end(sessionEnded: "the session broke: \(String(decoding: record.body, as: UTF8.self))")
            return
        case .jobEnded, .jobCaughtUp:
            return  // only on channels bound to jobs
        }
        if followedCommand == nil && record.seq >= stopAtSeq { end() }
        if let giveUp = giveUpAtSeq, record.seq >= giveUp { end() }
    }

    private func end(sessionEnded: String? = nil) {
        guard active, let core else { return }
        active = false
        core.outcome.resolve(.success(Outcome(exitStatus: lastExit, sessionEnded: sessionEnded)))
        core.output.finish()
        host.resumeReading(for: self)
    }

    /// Stops the live stream once the reception is over and consumed: later records
    /// stay journaled for the next receive.
    private func detachIfDone() {
        guard !active, !detached else { return }
        detached = true
        let number = self.number
        host.request(.detach, channel: number) { [weak self] _ in
            self?.host.closeChannel(number)
        }
    }
    private var detached = false

    private func fail(_ error: TetherClientError) {
        guard active, let core else { return }
        active = false
        detached = true
        host.closeChannel(number)
        host.resumeReading(for: self)
        core.outcome.resolve(.failure(error))
        core.output.finish(.failure(error))
    }

    func deliver(_ event: Event) {
        switch event {
        case .takenOver(let holder):
            fail(TetherClientError(.remote(.heldElsewhere), host: host.computerName,
                "the session was taken over by \(holder.clientHost) (tether connect --force)"))
        case .removed(let remover):
            fail(TetherClientError(.remote(.sessionClosed), host: host.computerName, SessionChannel.removedMessage(remover)))
        case .status:
            break
        }
    }

    func channelFailed(_ error: TetherClientError) {
        fail(error)
    }
}

/// The thread-safe half of a reception.
final class ReceptionCore: Sendable {
    /// What a resume of this reception needs besides the delivered seq; set on the loop.
    struct Progress: Sendable {
        var followedCommand: UInt64?
        var endSeq: UInt64 = 0
        var exitStatusSoFar: Int32?
        var awaitingStart = false
        /// This resume closed the command's stdin before its end had arrived.
        var stdinCut = false
    }

    let output: OutputQueue
    let outcome = Completion<ReceiveChannel.Outcome>()
    private let lock = Lock()
    nonisolated(unsafe) private var current = Progress()  // guarded by lock

    init(output: OutputQueue) { self.output = output }

    var progress: Progress {
        get { lock.withLock { current } }
        set { lock.withLock { current = newValue } }
    }
}
