import TetherIO
import TetherProtocol

/// A channel bound to one session's jobs (`jobs` request): no claim, so any client of the
/// user may use it while another holds the session. Loop-confined. Requests wait for the
/// binding; each is answered on its own.
final class JobsChannel: ChannelEndpoint {
    let host: HostConnection
    let instanceID: String
    private(set) var number: UInt32 = 0
    private enum State {
        case unbound
        case binding([(Result<Void, TetherClientError>) -> Void])
        case bound
        case gone(TetherClientError)
    }
    private var state = State.unbound

    init(host: HostConnection, instanceID: String) {
        self.host = host
        self.instanceID = instanceID
    }

    private func bind(_ completion: @escaping (Result<Void, TetherClientError>) -> Void) {
        switch state {
        case .bound:
            completion(.success(()))
        case .binding(var waiters):
            waiters.append(completion)
            state = .binding(waiters)
        case .gone(let error) where host.closedError != nil:
            completion(.failure(error))
        case .unbound, .gone:
            if let error = host.closedError { completion(.failure(error)); return }
            state = .binding([completion])
            number = host.openChannel(self)
            host.request(.jobs(instanceID: instanceID), channel: number) { [weak self] result in
                guard let self, case .binding(let waiters) = self.state else { return }
                let outcome: Result<Void, TetherClientError>
                switch result {
                case .success(.session): outcome = .success(())
                case .success(let other):
                    outcome = .failure(TetherClientError(.protocolViolation, host: self.host.computerName,
                                                         "unexpected answer to jobs: \(other)"))
                case .failure(let error): outcome = .failure(error)
                }
                if case .failure(let error) = outcome {
                    self.host.closeChannel(self.number)
                    self.state = .gone(error)
                } else {
                    self.state = .bound
                }
                waiters.forEach { $0(outcome) }
            }
        }
    }

    /// Binds if needed, then sends `request` on the channel.
    func request(_ request: Request, _ completion: @escaping (Result<Response, TetherClientError>) -> Void) {
        bind { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let error): completion(.failure(error))
            case .success: self.host.request(request, channel: self.number, completion)
            }
        }
    }

    func close() {
        guard case .bound = state else { return }
        state = .unbound
        let number = self.number
        host.request(.detach, channel: number) { [weak self] _ in self?.host.closeChannel(number) }
    }

    func deliver(_ record: Record) {}
    func deliver(_ event: Event) {}

    func channelFailed(_ error: TetherClientError) {
        state = .gone(error)
    }
}

/// One job's output on a channel of its own: `jobs`, then `jobReceive`. Records after the
/// job's acknowledged seq, live until the job ends with `follow`; acknowledged as they are
/// consumed unless `keep`. Loop-confined; detaches itself when done.
final class JobReceiveChannel: ChannelEndpoint {
    let host: HostConnection
    let instanceID: String
    let jobID: UInt64
    let follow: Bool
    let keep: Bool
    private(set) var number: UInt32 = 0
    private var lastSeq: UInt64 = 0
    private var core: JobReceptionCore?
    private var active = false
    private var detached = false

    init(host: HostConnection, instanceID: String, jobID: UInt64, follow: Bool, keep: Bool) {
        self.host = host
        self.instanceID = instanceID
        self.jobID = jobID
        self.follow = follow
        self.keep = keep
    }

    func start(_ completion: @escaping (Result<(JobInfo, JobReceptionCore), TetherClientError>) -> Void) {
        if let error = host.closedError { completion(.failure(error)); return }
        let core = JobReceptionCore(output: makeQueue())
        self.core = core
        number = host.openChannel(self)
        active = true
        var answered = false
        host.request(.jobs(instanceID: instanceID), channel: number) { [weak self] result in
            guard let self else { return }
            if case .failure(let error) = result, !answered {
                answered = true
                self.fail(error)
                completion(.failure(error))
            }
        }
        // Sent at once behind the binding: one round trip, not two.
        host.request(.jobReceive(jobID: jobID, follow: follow), channel: number) { [weak self] result in
            guard let self, !answered else { return }
            answered = true
            switch result {
            case .success(.job(let info)):
                self.lastSeq = 0
                completion(.success((info, core)))
            case .success(let other):
                let error = TetherClientError(.protocolViolation, host: self.host.computerName, "unexpected answer to jobReceive: \(other)")
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
        let keep = self.keep
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
                guard !keep else { return }
                reactor.execute {
                    let channel = bound.value
                    channel.host.send(Frame(type: .ack, channel: channel.number, payload: ControlCodec.ack(seq)))
                }
            },
            consumerReachedEnd: {
                reactor.execute { bound.value.detachIfDone() }
            },
            consumerCancelled: {
                reactor.execute { bound.value.abandon() }
            },
            wakeAfterTurn: { reactor.execute($0) })
    }

    /// The consuming task was cancelled: stop and detach now (unconsumed output stays
    /// unacknowledged on the host).
    private func abandon() {
        if active, let core {
            active = false
            host.resumeReading(for: self)
            core.end.resolve(.failure(CancellationError()))
            core.output.finish(.failure(CancellationError()))
        }
        detachIfDone()
    }

    func deliver(_ record: Record) {
        guard active, let core else { return }
        let queue = core.output
        switch record.kind {
        case .stdout, .stderr, .dropped, .warning, .verbose, .information, .progress:
            // A replay's overlap is dropped; a gap is fine only where a `dropped` record explains it.
            guard record.seq > lastSeq else { return }
            lastSeq = record.seq
            queue.push(.init(seq: record.seq, chunk: OutputChunk(record), ackNow: false))
        case .jobEnded:
            if let info = try? record.jobEndInfo() { core.end.resolve(.success(info)) }
            end()
        case .jobCaughtUp:
            core.end.resolve(.success(nil))
            end()
        case .commandStarted, .commandEnded, .sessionClosed, .sessionBroken:
            break
        }
    }

    private func end() {
        guard active, let core else { return }
        active = false
        // The last record is acknowledged when the consumer reaches the end (unless keep).
        if lastSeq > 0 { core.output.push(.init(seq: lastSeq, chunk: nil, ackNow: true)) }
        core.end.resolve(.success(nil))
        core.output.finish()
        host.resumeReading(for: self)
    }

    private func detachIfDone() {
        guard !active, !detached else { return }
        detached = true
        let number = self.number
        host.request(.detach, channel: number) { [weak self] _ in self?.host.closeChannel(number) }
    }

    private func fail(_ error: TetherClientError) {
        guard active, let core else { return }
        active = false
        detached = true
        host.closeChannel(number)
        host.resumeReading(for: self)
        core.end.resolve(.failure(error))
        core.output.finish(.failure(error))
    }

    func deliver(_ event: Event) {}

    func channelFailed(_ error: TetherClientError) {
        fail(error)
    }
}

/// The thread-safe half of a job reception.
final class JobReceptionCore: Sendable {
    let output: OutputQueue
    /// The job's end (state, exit status) if the reception followed it there; nil if it
    /// stopped at what the job had recorded.
    let end = Completion<(state: JobState, exitStatus: Int32)?>()
    init(output: OutputQueue) { self.output = output }
}
