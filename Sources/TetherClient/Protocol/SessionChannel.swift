import TetherIO
import TetherProtocol

/// One attachment (channel N) to a session, used to run commands. Loop-confined.
///
/// Attached without `receive`: the runspace sends only the records of commands started
/// on this channel. One command at a time; the runspace itself queues or refuses a
/// second (`wait`), so this class only routes.
final class SessionChannel: ChannelEndpoint {
    enum State {
        case detached
        case attaching
        case attached(AttachInfo)
        case gone(TetherClientError)
    }

    let host: HostConnection
    let instanceID: String
    private(set) var number: UInt32 = 0
    private(set) var state: State = .detached
    private var attachWaiters: [(Result<AttachInfo, TetherClientError>) -> Void] = []
    private var sequencer = RecordSequencer(after: 0, strict: false)
    private var running: (core: CommandCore, pump: DescriptorStdinPump?)?
    /// The newest output record (stdout, stderr, dropped) handed to a queue.
    private var highestOutputSeq: UInt64 = 0
    /// The newest seq acknowledged on the wire, and one held back (`sendAck`).
    private var sentAck: UInt64 = 0
    private var pendingAck: UInt64?
    /// When `pendingAck` was first held (monotonic ns): it leaves `markerAckDelay` later
    /// at the latest.
    private var pendingAckSince: UInt64 = 0
    /// Armed while an ack may be held; not cancelled when a request takes the ack along
    /// (`ackTimerFired` re-arms or does nothing), so a loop of short commands arms one
    /// timer per `markerAckDelay` instead of arming and cancelling one per command.
    private var ackTimer: TimerHandle?

    init(host: HostConnection, instanceID: String) {
        self.host = host
        self.instanceID = instanceID
    }

    // MARK: Attach / detach

    func attach(force: Bool, _ completion: @escaping (Result<AttachInfo, TetherClientError>) -> Void) {
        switch state {
        case .attached(let info):
            completion(.success(info))
        case .attaching:
            attachWaiters.append(completion)
        case .detached, .gone:
            if let error = host.closedError { completion(.failure(error)); return }
            state = .attaching
            attachWaiters.append(completion)
            number = host.openChannel(self)
            host.request(.attach(instanceID: instanceID, force: force, receive: false), channel: number) { [weak self] result in
                self?.attachAnswered(result)
            }
        }
    }

    private func attachAnswered(_ result: Result<Response, TetherClientError>) {
        let outcome: Result<AttachInfo, TetherClientError>
        switch result {
        case .success(.attached(let info)):
            state = .attached(info)
            sequencer = RecordSequencer(after: info.ackedSeq, strict: false)
            sentAck = info.ackedSeq
            pendingAck = nil
            outcome = .success(info)
        case .success(let other):
            outcome = .failure(TetherClientError(.protocolViolation, host: host.computerName, "unexpected answer to attach: \(other)"))
        case .failure(let error):
            outcome = .failure(error)
        }
        if case .failure(let error) = outcome {
            host.closeChannel(number)
            state = .gone(error)
        }
        let waiters = attachWaiters
        attachWaiters.removeAll()
        waiters.forEach { $0(outcome) }
    }

    func detach(_ completion: @escaping (Result<Void, TetherClientError>) -> Void) {
        guard case .attached = state else { completion(.success(())); return }
        if let core = running?.core {
            // Leaving a running command (`invoke --in-disconnected-session` does at once):
            // its output from now on is not taken — nor acknowledged, so it stays in the
            // journal for `receive` — and can't hold the detach's answer up behind it.
            endRunning(core, error: TetherClientError(.remote(.notAttached), host: host.computerName,
                "detached while the command ran; it goes on on the host, and `tether receive` collects its output"))
        }
        host.request(.detach, channel: number) { [weak self] result in
            guard let self else { return }
            self.host.closeChannel(self.number)
            self.state = .detached
            completion(result.map { _ in () })
        }
    }

    // MARK: Invoke

    /// Attaches if needed, starts the command, and answers once the runspace said
    /// `started` (or refused). Output flows into the returned core's queue.
    func invoke(_ request: InvokeRequest, stdin: StdinSource,
                _ completion: @escaping (Result<CommandCore, TetherClientError>) -> Void) {
        attach(force: false) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let error): completion(.failure(error))
            case .success: self.startCommand(request, stdin: stdin, completion)
            }
        }
    }

    private func startCommand(_ request: InvokeRequest, stdin: StdinSource,
                              _ completion: @escaping (Result<CommandCore, TetherClientError>) -> Void) {
        if running != nil {
            completion(.failure(TetherClientError(.remote(.busy), host: host.computerName,
                "this attachment is already running a command; wait for it to end")))
            return
        }
        let core = makeCore()
        running = (core, nil)
        var request = request
        request.stdin = !stdin.isNone
        host.request(.invoke(request), channel: number) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(.started(let commandID)):
                core.commandID.resolve(.success(commandID))
                self.startStdin(stdin, core: core)
                completion(.success(core))
            case .success(let other):
                let error = TetherClientError(.protocolViolation, host: self.host.computerName, "unexpected answer to invoke: \(other)")
                self.endRunning(core, error: error)
                completion(.failure(error))
            case .failure(let error):
                self.endRunning(core, error: error)
                completion(.failure(error))
            }
        }
    }

    private func makeCore() -> CommandCore {
        let reactor = host.reactor
        let bound = LoopBound(self)
        let queue = OutputQueue(
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
                // A consumer on the loop's own thread (`TetherClient.taskExecutor`) acks at
                // once: ahead of the request it sends next, as `flushHeldAcks` promises, and
                // without a round of the loop. (`sendAck` only queues bytes to write.)
                if reactor.isLoopThread {
                    bound.value.sendAck(seq)
                } else {
                    reactor.execute { bound.value.sendAck(seq) }
                }
            },
            consumerCancelled: {
                reactor.execute { bound.value.abandonCancelledCommand() }
            },
            wakeAfterTurn: { reactor.execute($0) })
        return CommandCore(output: queue)
    }

    /// The task reading the running command's output was cancelled: detach, so the
    /// channel neither takes nor holds up output nobody reads. The command goes on on the
    /// host and its output stays there, unacknowledged, for `receive`. (A command that
    /// already ended leaves the attachment as it is, ready for the next invoke.)
    private func abandonCancelledCommand() {
        guard let core = running?.core, core.output.consumerCancelledEarly else { return }
        detach { _ in }
    }

    /// How long an ack that covers no output may wait for company (see `sendAck`).
    static let markerAckDelay: Double = 0.02

    /// Acks output at once: a client that dies must not have printed anything the host
    /// would replay to the next one. An ack that covers only markers (a command's start
    /// and end) waits up to `markerAckDelay` and leaves with the next request instead
    /// (`HostConnection` flushes before each, and before closing): a loop of short
    /// commands then sends one packet per command, not three, and every hop (sshd,
    /// subsystem, runspace) wakes once.
    private func sendAck(_ seq: UInt64) {
        guard case .attached = state else { return }
        if pendingAck == nil { pendingAckSince = Reactor.now() }
        pendingAck = max(pendingAck ?? 0, seq)
        if highestOutputSeq > sentAck {
            flushAck()
        } else {
            armAckTimer(after: Self.markerAckDelay)
        }
    }

    private func armAckTimer(after seconds: Double) {
        guard ackTimer == nil else { return }
        ackTimer = host.reactor.schedule(after: seconds) { [weak self] in self?.ackTimerFired() }
    }

    /// The held ack has waited `markerAckDelay`: it goes now. One held for less (the
    /// earlier one left with a request) gets the rest of its wait.
    private func ackTimerFired() {
        ackTimer = nil
        guard pendingAck != nil else { return }
        let waited = Double(Reactor.now() &- pendingAckSince) / 1e9
        if waited < Self.markerAckDelay {
            armAckTimer(after: Self.markerAckDelay - waited)
        } else {
            flushAck()
        }
    }

    func flushHeldAcks() { flushAck() }

    /// Sends the held ack, if any.
    private func flushAck() {
        guard let seq = pendingAck, case .attached = state else { return }
        pendingAck = nil
        sentAck = max(sentAck, seq)
        host.send(Frame(type: .ack, channel: number, payload: ControlCodec.ack(seq)))
    }

    private func startStdin(_ stdin: StdinSource, core: CommandCore) {
        let channel = number
        if !stdin.isNone { core.stdinProgress = .forwarding }
        switch stdin {
        case .none:
            break
        case .bytes(let bytes):
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + 256 * 1024)
                host.send(Frame(type: .stdinData, channel: channel, payload: Array(bytes[offset..<end])))
                offset = end
            }
            host.send(Frame(type: .stdinEOF, channel: channel))
            core.stdinProgress = .ended
        case .fileDescriptor(let fd):
            let pump = DescriptorStdinPump(reactor: host.reactor, host: host, fd: fd, channel: channel)
            pump.onEnd = { core.stdinProgress = .ended }
            running?.pump = pump
            pump.start()
        case .stream(let stream):
            let bound = LoopBound(self)
            let reactor = host.reactor
            Task {
                for await chunk in stream where !chunk.isEmpty {
                    if core.exit.isResolved { return }
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        reactor.execute {
                            let me = bound.value
                            me.host.whenWritable {
                                me.host.send(Frame(type: .stdinData, channel: channel, payload: chunk))
                                continuation.resume()
                            }
                        }
                    }
                }
                reactor.execute {
                    bound.value.host.send(Frame(type: .stdinEOF, channel: channel))
                    core.stdinProgress = .ended
                }
            }
        }
    }

    /// Asks the runspace to SIGINT the running command's process group.
    func interrupt(_ completion: @escaping (Result<Void, TetherClientError>) -> Void) {
        guard case .attached = state else {
            completion(.failure(TetherClientError(.remote(.notAttached), host: host.computerName, "not attached to the session")))
            return
        }
        host.request(.signal(.interrupt), channel: number) { completion($0.map { _ in () }) }
    }

    /// Asks the runspace to resize the running command's terminal.
    func resize(_ size: TerminalSize, _ completion: @escaping (Result<Void, TetherClientError>) -> Void) {
        guard case .attached = state else {
            completion(.failure(TetherClientError(.remote(.notAttached), host: host.computerName, "not attached to the session")))
            return
        }
        host.request(.resize(size), channel: number) { completion($0.map { _ in () }) }
    }

    private func endRunning(_ core: CommandCore, error: TetherClientError? = nil, status: Int32? = nil) {
        guard let current = running, current.core === core else { return }
        current.pump?.stop()
        running = nil
        host.resumeReading(for: self)
        if let error { core.fail(error) } else { core.end(status: status ?? 0) }
    }

    // MARK: ChannelEndpoint

    func deliver(_ record: Record) {
        do {
            guard try sequencer.check(record) == .accept else { return }
        } catch {
            if let core = running?.core { endRunning(core, error: error.on(host: host.computerName)) }
            return
        }
        guard let core = running?.core else { return }
        let queue = core.output
        switch record.kind {
        case .stdout, .stderr, .dropped, .warning, .verbose, .information, .progress:
            highestOutputSeq = max(highestOutputSeq, record.seq)
        default: break
        }
        switch record.kind {
        case .commandStarted:
            sequencer.strict = true
            queue.push(.init(seq: record.seq, chunk: nil, ackNow: false))
        case .stdout:
            queue.push(.init(seq: record.seq, chunk: .stdout(record.body), ackNow: false))
        case .stderr:
            queue.push(.init(seq: record.seq, chunk: .stderr(record.body), ackNow: false))
        case .dropped, .warning, .verbose, .information, .progress:
            // An undecodable stream record still takes its place (nothing to show).
            queue.push(.init(seq: record.seq, chunk: OutputChunk(record), ackNow: false))
        case .commandEnded:
            sequencer.strict = false
            queue.push(.init(seq: record.seq, chunk: nil, ackNow: true))
            endRunning(core, status: (try? record.exitStatus()) ?? -1)
        case .sessionClosed:
            // `exit N` in a script ends the interpreter: the command's status is N.
            sequencer.strict = false
            queue.push(.init(seq: record.seq, chunk: nil, ackNow: true))
            endRunning(core, status: (try? record.closedInfo().exitCode) ?? -1)
        case .sessionBroken:
            sequencer.strict = false
            queue.push(.init(seq: record.seq, chunk: nil, ackNow: true))
            let reason = String(decoding: record.body, as: UTF8.self)
            endRunning(core, error: TetherClientError(.remote(.sessionBroken), host: host.computerName,
                                                      "the session broke: \(reason)"))
        case .jobEnded, .jobCaughtUp:
            break  // only on channels bound to jobs
        }
    }

    func deliver(_ event: Event) {
        let error: TetherClientError
        switch event {
        case .takenOver(let holder):
            error = TetherClientError(.remote(.heldElsewhere), host: host.computerName,
                "the session was taken over by \(holder.clientHost) (tether connect --force); the command goes on there")
        case .removed(let remover):
            error = TetherClientError(.remote(.sessionClosed), host: host.computerName, Self.removedMessage(remover))
        case .status:
            return
        }
        host.closeChannel(number)
        state = .gone(error)
        if let core = running?.core { endRunning(core, error: error) }
    }

    /// What a client following a command is told when another `tether remove` ends it.
    static func removedMessage(_ remover: Holder) -> String {
        "the session was removed by client \(remover.clientHost) (\(remover.clientID.prefix(8))) with tether remove; its command was killed"
    }

    func channelFailed(_ error: TetherClientError) {
        // A pending attach hears the same error through its request.
        state = .gone(error)
        if let core = running?.core {
            // A lost connection keeps its bare reason: the caller resumes (or says what
            // to do) itself; `resumePoint` has the rest.
            let message = error.isConnectionLevel && !error.isConnectionLost
                ? "\(error.message) (the command goes on on the host; `tether receive` collects its output)"
                : error.message
            endRunning(core, error: TetherClientError(error.kind, host: error.host ?? host.computerName, message))
        }
    }
}
