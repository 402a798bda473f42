import TetherIO
import TetherProtocol

/// The hand-over point between the loop (which receives records) and the task that
/// consumes a command's output — and the place where two promises are kept:
///
/// * **Backpressure.** When more than `highWatermark` bytes wait for the consumer, the
///   loop stops reading the transport (`pause`), so the host's runspace blocks or drops
///   by its own rules instead of this process growing without bound. Reading resumes once
///   the consumer has caught up below `lowWatermark`.
/// * **Acknowledgement on consumption.** A record is acknowledged only after the consumer
///   is done with it — it came back for the next chunk, or reached the end — (every
///   ≥ 1 MiB, at each command end, and whenever the consumer has caught up), so output
///   still queued here, or taken but not yet printed (a stuck stdout), when the process
///   died is replayed to the next `receive`, not lost — and little that was already
///   printed is replayed twice. A consumer that keeps a chunk without writing it out yet
///   (a line waiting for its newline) holds it (`holdLatest`): nothing from that record
///   on is acknowledged until the hold is released.
final class OutputQueue: @unchecked Sendable {
    struct Entry {
        var seq: UInt64
        /// nil for records that carry no output (command start/end) but must be acked.
        var chunk: OutputChunk?
        /// Acknowledge as soon as this entry is consumed (command end).
        var ackNow: Bool
    }

    /// Above the host's window per channel (protocol.md, "Flow control"): a host that keeps
    /// to it never makes this queue pause the connection, which all channels share.
    static let highWatermark = FlowControl.channelWindow + (4 << 20)
    static let lowWatermark = 1 << 20
    static let ackInterval = 1 << 20

    private let lock = Lock()
    private var entries: [Entry] = []
    private var head = 0
    private var bufferedBytes = 0
    /// The most output that ever waited here for the consumer (tests: the host's window
    /// bounds it).
    private var peakBufferedBytes = 0
    private var ending: Result<Void, Error>?
    private var waiter: CheckedContinuation<OutputChunk?, Error>?
    // Acknowledgement bookkeeping (consumer side, under lock).
    private var consumedSeq: UInt64 = 0
    /// The chunk the consumer took last and may still be writing out: it counts as
    /// consumed only when the consumer asks for the next one.
    private var handedOut: (seq: UInt64, bytes: Int)?
    private var ackedSeq: UInt64 = 0
    private var bytesSinceAck = 0
    /// The seq of the last entry handed to the consumer (output or marker): where a
    /// resume on a new connection must pick up, acknowledged or not.
    private var deliveredSeq: UInt64 = 0
    /// Seqs of chunks the consumer took but has not written out yet, ascending: no ack
    /// may reach the first of them.
    private var held: [UInt64] = []
    /// The consumer reached the end while something was held: the end is reported when
    /// the last hold is released (a `receive` channel detaches only after the final ack).
    private var endWaitsForHolds = false
    // Backpressure (decided on the loop, under lock).
    private var readingPaused = false
    private var resumeScheduled = false

    /// Called on the loop when this queue needs the transport paused.
    private let pause: () -> Void
    /// Called from the consumer; must hop to the loop and call `resumeIfDrained(resume:)`.
    private let requestResume: @Sendable (OutputQueue) -> Void
    /// Sends `ack seq`; called from the consumer, hops to the loop itself.
    private let sendAck: @Sendable (UInt64) -> Void

    /// Called once, after the final ack, when the consumer has reached the end.
    private let consumerReachedEnd: (@Sendable () -> Void)?
    private var endReported = false
    /// Called once when the consuming task is cancelled before the end: the channel lets
    /// go of the host (what was not consumed stays unacknowledged there, for `receive`).
    private let consumerCancelled: (@Sendable () -> Void)?
    private var cancelled = false
    /// Runs its argument on the loop after the current turn (`Reactor.execute` from the
    /// loop's own thread: no system call). With it, a consumer parked for output is woken
    /// once per turn — after every record that turn decoded is queued — not once per
    /// record: a stream's consumer then takes several records per wake-up, and comes back
    /// to an empty queue (which acknowledges) once per turn too. Nil: at once (tests).
    private let wakeAfterTurn: ((@escaping @Sendable () -> Void) -> Void)?
    /// A wake-up is queued on the loop (under lock).
    private var wakeQueued = false

    init(pause: @escaping () -> Void, requestResume: @escaping @Sendable (OutputQueue) -> Void,
         sendAck: @escaping @Sendable (UInt64) -> Void, consumerReachedEnd: (@Sendable () -> Void)? = nil,
         consumerCancelled: (@Sendable () -> Void)? = nil,
         wakeAfterTurn: ((@escaping @Sendable () -> Void) -> Void)? = nil) {
        self.pause = pause
        self.requestResume = requestResume
        self.sendAck = sendAck
        self.consumerReachedEnd = consumerReachedEnd
        self.consumerCancelled = consumerCancelled
        self.wakeAfterTurn = wakeAfterTurn
    }

    // MARK: Loop side

    /// Adds a record's worth of output (or a marker). Loop thread only.
    func push(_ entry: Entry) {
        var resume: CheckedContinuation<OutputChunk?, Error>?
        var result: OutputChunk??
        var needPause = false
        var queueWake = false
        lock.withLock {
            guard ending == nil else { return }
            entries.append(entry)
            bufferedBytes += entry.chunk?.byteCount ?? 0
            peakBufferedBytes = max(peakBufferedBytes, bufferedBytes)
            if waiter != nil && wakeAfterTurn != nil && (wakeQueued || entry.chunk != nil) {
                // Output (and what follows it) waits for the end of the turn.
                if !wakeQueued {
                    wakeQueued = true
                    queueWake = true
                }
            } else if let w = waiter, let chunk = popLocked() {
                // (A marker alone is consumed at once, as it pops as nothing.)
                waiter = nil
                resume = w
                result = .some(chunk)
            }
            if !readingPaused && bufferedBytes > Self.highWatermark {
                readingPaused = true
                needPause = true
            }
        }
        if needPause { pause() }
        if let resume, let result { resume.resume(returning: result) }
        if queueWake, let wakeAfterTurn { wakeAfterTurn { [self] in wakeWaiter() } }
        flushAckIfDue()
    }

    /// The turn's records are queued: a parked consumer gets the first of them (it takes
    /// the rest without waiting). Loop thread.
    private func wakeWaiter() {
        var resume: CheckedContinuation<OutputChunk?, Error>?
        var result: OutputChunk?
        lock.withLock {
            wakeQueued = false
            // The consumer may have come back meanwhile, or `finish` woken it.
            guard let w = waiter, let chunk = popLocked() else { return }
            waiter = nil
            resume = w
            result = chunk
        }
        if let resume, let result { resume.resume(returning: result) }
        flushAckIfDue()
    }

    /// No more entries: the consumer gets the rest, then nil (or the error).
    func finish(_ result: Result<Void, Error> = .success(())) {
        var resume: CheckedContinuation<OutputChunk?, Error>?
        var deliver: Result<OutputChunk?, Error>?
        lock.withLock {
            guard ending == nil else { return }
            ending = result
            if let w = waiter {
                // The waiter was parked on an empty queue, so only the ending remains —
                // unless markers are queued, which pop as nothing.
                if let chunk = popLocked() {
                    deliver = .success(chunk)
                } else {
                    deliver = result.map { nil }
                }
                waiter = nil
                resume = w
            }
            if readingPaused { resumeScheduled = true }
        }
        if let resume, let deliver { resume.resume(with: deliver) }
        flushAckIfDue()
        requestResumeIfPaused()
    }

    /// Loop side of `requestResume`: resumes the transport if still drained.
    func resumeIfDrained(resume: () -> Void) {
        let doResume: Bool = lock.withLock {
            resumeScheduled = false
            guard readingPaused, bufferedBytes <= Self.highWatermark || ending != nil else { return false }
            readingPaused = false
            return true
        }
        if doResume { resume() }
    }

    var isPausingReads: Bool { lock.withLock { readingPaused } }

    /// A consumer is parked in `next()` (tests).
    var consumerIsWaiting: Bool { lock.withLock { waiter != nil } }

    /// The most output bytes that ever waited for the consumer (tests).
    var peakBufferedByteCount: Int { lock.withLock { peakBufferedBytes } }

    /// The consumer's task was cancelled before it reached the end. Any thread.
    var consumerCancelledEarly: Bool { lock.withLock { cancelled && !endReported } }

    /// The seq of the last record handed to the consumer (0: none yet). Any thread.
    var lastDeliveredSeq: UInt64 { lock.withLock { deliveredSeq } }

    /// Records up to `seq` count as delivered already (a resume starts after them).
    func assumeDelivered(through seq: UInt64) {
        lock.withLock { deliveredSeq = max(deliveredSeq, seq) }
    }

    // MARK: Consumer side

    func next() async throws -> OutputChunk? {
        // Back for more: the consumer is done with the chunk it took last.
        lock.withLock { confirmHandedOutLocked() }
        flushAckIfDue()
        if Task.isCancelled {
            cancelConsumer()
            throw CancellationError()
        }
        let immediate: Result<OutputChunk?, Error>? = lock.withLock {
            if let chunk = popLocked() { return .success(chunk) }
            if let ending { return ending.map { nil } }
            return nil
        }
        if let immediate {
            afterPop()
            if case .success(.some) = immediate {} else { reportEnd() }
            return try immediate.get()
        }
        let value: OutputChunk?
        do {
            value = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let ready: Result<OutputChunk?, Error>? = lock.withLock {
                        if let chunk = popLocked() { return .success(chunk) }
                        if let ending { return ending.map { nil } }
                        if cancelled { return .failure(CancellationError()) }
                        waiter = continuation
                        return nil
                    }
                    if let ready { continuation.resume(with: ready) }
                }
            } onCancel: {
                cancelConsumer()
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            afterPop()
            reportEnd()
            throw error
        }
        afterPop()
        if value == nil { reportEnd() }
        return value
    }

    /// The consuming task was cancelled: a waiting `next()` throws `CancellationError` now,
    /// and (unless the end was reached already) the channel is told once, to let go.
    private func cancelConsumer() {
        let (wake, tell): (CheckedContinuation<OutputChunk?, Error>?, Bool) = lock.withLock {
            let wake = waiter
            waiter = nil
            guard !cancelled else { return (wake, false) }
            cancelled = true
            return (wake, !endReported)
        }
        wake?.resume(throwing: CancellationError())
        // What the consumer finished with is acknowledged before the channel lets go, so
        // the next receive starts right after it: nothing lost, nothing twice.
        flushAckIfDue(caughtUp: true)
        if tell { consumerCancelled?() }
    }

    private func reportEnd() {
        let report: Bool = lock.withLock {
            if !held.isEmpty { endWaitsForHolds = true; return false }
            defer { endReported = true }
            return !endReported
        }
        if report { consumerReachedEnd?() }
    }

    /// The chunk the consumer took last is not written out yet: it and every later
    /// record stay unacknowledged until the returned hold's `release()`. Consumer side,
    /// before it asks for the next chunk.
    func holdLatest() -> UInt64? {
        lock.withLock {
            guard let chunk = handedOut else { return nil }
            if held.last != chunk.seq { held.append(chunk.seq) }
            return chunk.seq
        }
    }

    /// The held chunk `seq` has been written out. Any thread.
    func release(_ seq: UInt64) {
        let endNow: Bool = lock.withLock {
            if let index = held.firstIndex(of: seq) { held.remove(at: index) }
            guard held.isEmpty, endWaitsForHolds else { return false }
            endWaitsForHolds = false
            return true
        }
        // Caught up with a written line: acknowledge it now rather than with the next
        // record (there may be none).
        flushAckIfDue(caughtUp: true)
        if endNow { reportEnd() }
    }

    /// The last chunk handed out has been dealt with by the consumer. Under lock.
    private func confirmHandedOutLocked() {
        guard let chunk = handedOut else { return }
        handedOut = nil
        consumedSeq = max(consumedSeq, chunk.seq)
        bytesSinceAck += chunk.bytes
    }

    /// Takes the next output chunk, consuming marker entries on the way (they carry no
    /// output, so taking them is consuming them). Under lock; only ever called for a
    /// consumer inside `next()`, which has confirmed its previous chunk.
    private func popLocked() -> OutputChunk? {
        while head < entries.count {
            let entry = entries[head]
            entries[head] = Entry(seq: 0, chunk: nil, ackNow: false)
            head += 1
            if head > 1024 && head * 2 > entries.count {
                entries.removeFirst(head)
                head = 0
            }
            if entry.ackNow { bytesSinceAck = Self.ackInterval }
            deliveredSeq = max(deliveredSeq, entry.seq)
            if let chunk = entry.chunk {
                bufferedBytes -= chunk.byteCount
                handedOut = (entry.seq, chunk.byteCount)
                return chunk
            }
            consumedSeq = max(consumedSeq, entry.seq)
        }
        return nil
    }

    private func afterPop() {
        flushAckIfDue()
        requestResumeIfPaused()
    }

    private func requestResumeIfPaused() {
        let schedule: Bool = lock.withLock {
            guard readingPaused, !resumeScheduled, bufferedBytes <= Self.lowWatermark || ending != nil else { return false }
            resumeScheduled = true
            return true
        }
        if schedule { requestResume(self) }
    }

    private func flushAckIfDue(caughtUp: Bool = false) {
        let seq: UInt64? = lock.withLock {
            // Ack every 1 MiB under load, and whenever the consumer has caught up: then
            // a client that dies right after printing has little to be replayed twice.
            let drained = head >= entries.count
            let due = bytesSinceAck >= Self.ackInterval || drained || caughtUp
            // Never past a chunk the consumer holds unwritten.
            let ackable = held.first.map { min(consumedSeq, $0 - 1) } ?? consumedSeq
            guard due, ackable > ackedSeq else { return nil }
            ackedSeq = ackable
            bytesSinceAck = 0
            return ackable
        }
        if let seq { sendAck(seq) }
    }
}

/// A command's output as an `AsyncSequence`: stdout, stderr and drop notices in order.
/// Iterate it to the end (or the command's output backs up on the host, by design).
public struct OutputSequence: AsyncSequence, Sendable {
    public typealias Element = OutputChunk
    let queue: OutputQueue

    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: OutputQueue
        public mutating func next() async throws -> OutputChunk? {
            try await queue.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(queue: queue)
    }

    /// For a consumer that keeps the chunk it took last without writing it out yet (a
    /// line held back until its newline): that record and every later one stay
    /// unacknowledged — so the next `receive` gets them again if this process dies —
    /// until `release()` on the returned hold. Call it before asking for the next chunk.
    public func holdLatest() -> OutputHold {
        OutputHold(queue: queue, seq: queue.holdLatest())
    }
}

/// A chunk of output taken but not yet written out (`OutputSequence.holdLatest()`).
public struct OutputHold: Sendable {
    let queue: OutputQueue
    let seq: UInt64?

    /// The held chunk has been written: acknowledgement may pass it.
    public func release() {
        if let seq { queue.release(seq) }
    }
}
