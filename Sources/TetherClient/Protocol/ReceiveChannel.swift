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

    let host: HostConnection
    let instanceID: String
    private(set) var number: UInt32 = 0
    private var sequencer = RecordSequencer(after: 0, strict: true)
    private var core: ReceptionCore?
    private var followedCommand: UInt64?
    private var stopAtSeq: UInt64 = 0
    private var lastExit: Int32?
    private var active = false

    init(host: HostConnection, instanceID: String) {
        self.host = host
        self.instanceID = instanceID
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
                self.sequencer = RecordSequencer(after: info.ackedSeq, strict: true)
                self.followedCommand = info.runningCommandID
                self.stopAtSeq = info.lastSeq
                completion(.success((info, core)))
                // Nothing to replay and nothing running: the reception is empty.
                if info.runningCommandID == nil && info.lastSeq <= info.ackedSeq { self.end() }
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
            })
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
        switch record.kind {
        case .commandStarted:
            queue.push(.init(seq: record.seq, chunk: nil, ackNow: false))
        case .stdout:
            queue.push(.init(seq: record.seq, chunk: .stdout(record.body), ackNow: false))
        case .stderr:
            queue.push(.init(seq: record.seq, chunk: .stderr(record.body), ackNow: false))
        case .dropped:
            let counts: (bytes: UInt64, records: UInt64) = (try? record.droppedCounts()) ?? (0, 0)
            queue.push(.init(seq: record.seq, chunk: .dropped(bytes: counts.bytes, records: counts.records), ackNow: false))
        case .commandEnded:
            queue.push(.init(seq: record.seq, chunk: nil, ackNow: true))
            lastExit = try? record.exitStatus()
            if let followed = followedCommand, (try? record.commandID()) == followed {
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
        }
        if followedCommand == nil && record.seq >= stopAtSeq { end() }
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
        guard case .takenOver(let holder) = event else { return }
        fail(TetherClientError(.remote(.heldElsewhere), host: host.computerName,
            "the session was taken over by \(holder.clientHost) (tether connect --force)"))
    }

    func channelFailed(_ error: TetherClientError) {
        fail(error)
    }
}

/// The thread-safe half of a reception.
final class ReceptionCore: Sendable {
    let output: OutputQueue
    let outcome = Completion<ReceiveChannel.Outcome>()
    init(output: OutputQueue) { self.output = output }
}
