import Glibc
import CTetherPosix

/// What a registered descriptor wants to hear about.
public struct Interest: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let readable = Interest(rawValue: 1)
    public static let writable = Interest(rawValue: 2)
    public static let none: Interest = []
}

/// What poll(2) reported for a descriptor. `hangup` and `error` arrive whatever the interest.
public struct Readiness: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let readable = Readiness(rawValue: 1)
    public static let writable = Readiness(rawValue: 2)
    public static let hangup = Readiness(rawValue: 4)
    public static let error = Readiness(rawValue: 8)
}

/// A handle to a registered descriptor; pass it back to `update` or `unregister`.
public struct Registration: Hashable, Sendable {
    fileprivate let id: UInt64
}

/// A handle to a scheduled timer; pass it back to `cancel`.
public struct TimerHandle: Hashable, Sendable {
    fileprivate let id: UInt64
}

/// One thread, one poll(2) loop: every process of Tether runs its I/O here.
///
/// Why not SwiftNIO: libssh2's non-blocking model needs the loop to poll exactly the
/// directions `libssh2_session_block_directions` asks for and to re-arm `TCP_QUICKACK`
/// before every poll (see docs/architecture.md); a loop of our own makes both one line.
/// The host processes use the same loop so there is one model to learn.
///
/// Confinement: everything except `execute` and `stop` must be called on the loop's own
/// thread (from handlers, timers, or before `run`). `execute` is the only door in from
/// other threads; it wakes the loop through a pipe, so nothing ever sleeps to poll.
public final class Reactor: @unchecked Sendable {
    /// A class, so `update` changes the interest in place: a struct's through the
    /// dictionary's modify accessor allocated a coroutine frame on every call — twice a
    /// command on the client's SSH socket.
    private final class Entry {
        let fd: Int32
        var interest: Interest
        let handler: (Readiness) -> Void
        init(fd: Int32, interest: Interest, handler: @escaping (Readiness) -> Void) {
            self.fd = fd
            self.interest = interest
            self.handler = handler
        }
    }
    private struct Timer {
        var deadline: UInt64
        var body: () -> Void
    }

    private var entries: [UInt64: Entry] = [:]
    private var timers: [UInt64: Timer] = [:]
    private var nextID: UInt64 = 1
    private var beforePoll: [() -> Void] = []
    private var running = false

    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let lock = Lock()
    private var injected: [@Sendable () -> Void] = []  // guarded by lock
    /// `injected`'s other half: swapped with it to run the queue, emptied with its
    /// capacity kept, so queueing a task's next step allocates no new array each time.
    private var runningInjected: [@Sendable () -> Void] = []
    private var stopRequested = false                   // guarded by lock

    public init() throws {
        var fds: [Int32] = [0, 0]
        guard tether_pipe2(&fds, Int32(O_NONBLOCK | O_CLOEXEC)) == 0 else {
            throw SystemError.last("pipe2")
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    // MARK: Descriptors

    @discardableResult
    public func register(fd: Int32, interest: Interest, _ handler: @escaping (Readiness) -> Void) -> Registration {
        let id = nextID
        nextID += 1
        entries[id] = Entry(fd: fd, interest: interest, handler: handler)
        return Registration(id: id)
    }

    public func update(_ registration: Registration, interest: Interest) {
        if let entry = entries[registration.id] { entry.interest = interest }
    }

    public func interest(of registration: Registration) -> Interest? {
        entries[registration.id]?.interest
    }

    public func unregister(_ registration: Registration) {
        entries[registration.id] = nil
    }

    // MARK: Timers

    /// Runs `body` on the loop once `seconds` have passed (monotonic clock).
    @discardableResult
    public func schedule(after seconds: Double, _ body: @escaping () -> Void) -> TimerHandle {
        let id = nextID
        nextID += 1
        let delay = UInt64(max(0, seconds) * 1_000_000_000)
        timers[id] = Timer(deadline: Reactor.now() &+ delay, body: body)
        return TimerHandle(id: id)
    }

    public func cancel(_ timer: TimerHandle) {
        timers[timer.id] = nil
    }

    /// Runs before every poll(2); the SSH transport re-arms TCP_QUICKACK here.
    public func addBeforePollHook(_ body: @escaping () -> Void) {
        beforePoll.append(body)
    }

    // MARK: Cross-thread

    /// True on the thread inside `run`.
    public var isLoopThread: Bool {
        guard let thread = runningThread.withLock({ $0 }) else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }
    private let runningThread = LockedValue<pthread_t?>(nil)

    /// Runs `body` on the loop thread soon. Safe from any thread.
    public func execute(_ body: @escaping @Sendable () -> Void) {
        lock.withLock { injected.append(body) }
        // From the loop itself (a task on the client's executor, a callback) the loop is
        // awake: it runs `injected` before it polls again, and polls without waiting while
        // any is queued. Only another thread has to wake it.
        if !isLoopThread { wake() }
    }

    /// Makes `run` return after the current iteration. Safe from any thread.
    public func stop() {
        lock.withLock { stopRequested = true }
        wake()
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)  // EAGAIN means a wake is already pending: fine.
    }

    // MARK: The loop

    /// Monotonic nanoseconds.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Runs until `stop()`; returns then. Also returns when there is nothing left to wait
    /// for (no descriptors, no timers) if `untilIdle` is true.
    public func run(untilIdle: Bool = false) {
        runningThread.withLock { $0 = pthread_self() }
        defer { runningThread.withLock { $0 = nil } }
        running = true
        defer { running = false }
        var pollSet: [pollfd] = []
        var ids: [UInt64] = []
        while true {
            if lock.withLock({ stopRequested }) { lock.withLock { stopRequested = false }; return }
            // Work that this work queued or made due (a task's next step on the client's
            // loop, the acknowledgement it asked for, a write scheduled `after: 0`) runs
            // now, not after a poll(2) that could not have waited anyway: one system call
            // (and a before-poll hook's) less per round of a loop that answers requests.
            // Bounded, so descriptors are never starved: a third round goes through poll.
            for round in 0..<Self.roundsBeforePoll {
                runInjected()
                runDueTimers()
                if round + 1 < Self.roundsBeforePoll && !hasWorkDueNow() { break }
            }
            if lock.withLock({ stopRequested }) { lock.withLock { stopRequested = false }; return }
            if untilIdle && entries.isEmpty && timers.isEmpty && lock.withLock({ injected.isEmpty }) {
                return
            }
            for hook in beforePoll { hook() }

            pollSet.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            pollSet.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            ids.append(0)
            for (id, entry) in entries {
                var events: Int16 = 0
                if entry.interest.contains(.readable) { events |= Int16(POLLIN) }
                if entry.interest.contains(.writable) { events |= Int16(POLLOUT) }
                // An fd with no interest is still polled with events 0 so HUP/ERR arrive.
                pollSet.append(pollfd(fd: entry.fd, events: events, revents: 0))
                ids.append(id)
            }
            let timeout = pollTimeoutMillis()
            let n = poll(&pollSet, nfds_t(pollSet.count), timeout)
            if n < 0 {
                if errno == EINTR { continue }
                fatalError("poll failed: errno \(errno)")
            }
            if n == 0 { continue }
            if pollSet[0].revents != 0 { drainWakePipe() }
            for index in 1..<pollSet.count where pollSet[index].revents != 0 {
                let revents = Int32(pollSet[index].revents)
                // The handler may have been removed by an earlier handler in this round.
                guard let entry = entries[ids[index]] else { continue }
                var readiness: Readiness = []
                if revents & Int32(POLLIN) != 0 { readiness.insert(.readable) }
                if revents & Int32(POLLOUT) != 0 { readiness.insert(.writable) }
                if revents & Int32(POLLHUP) != 0 { readiness.insert(.hangup) }
                if revents & Int32(POLLERR | POLLNVAL) != 0 { readiness.insert(.error) }
                // Don't report readiness the handler no longer asked for, unless it's fatal.
                if !entry.interest.contains(.readable) { readiness.remove(.readable) }
                if !entry.interest.contains(.writable) { readiness.remove(.writable) }
                if readiness.isEmpty { continue }
                if readiness.contains(.error) || readiness.contains(.hangup) {
                    // Level-triggered HUP would spin if the handler ignores it: the handler
                    // must unregister or it is unregistered for it after this call.
                    entry.handler(readiness)
                    if let still = entries[ids[index]], still.fd == entry.fd,
                       !readiness.contains(.readable) {
                        entries[ids[index]] = nil
                    }
                } else {
                    entry.handler(readiness)
                }
            }
        }
    }

    /// Rounds of queued work and due timers run back to back before a poll(2).
    private static let roundsBeforePoll = 3

    private func hasWorkDueNow() -> Bool {
        if lock.withLock({ !injected.isEmpty }) { return true }
        guard let next = nextDeadline() else { return false }
        return next <= Reactor.now()
    }

    /// The earliest timer's deadline (no array built: this runs on every round).
    private func nextDeadline() -> UInt64? {
        var next: UInt64?
        for timer in timers.values where timer.deadline < (next ?? .max) { next = timer.deadline }
        return next
    }

    private func pollTimeoutMillis() -> Int32 {
        if lock.withLock({ !injected.isEmpty }) { return 0 }
        guard let next = nextDeadline() else { return -1 }
        let now = Reactor.now()
        if next <= now { return 0 }
        let millis = (next - now + 999_999) / 1_000_000
        return Int32(min(millis, UInt64(Int32.max)))
    }

    private func runInjected() {
        lock.withLock { swap(&injected, &runningInjected) }
        for body in runningInjected { body() }
        runningInjected.removeAll(keepingCapacity: true)
    }

    /// Runs the timers due now, earliest first; one a due timer schedules runs in a
    /// later round. No array or dictionary is built: a loop of commands makes a timer
    /// due several times per command (a write scheduled `after: 0`, held answers).
    private func runDueTimers() {
        let now = Reactor.now()
        let firstNew = nextID
        while true {
            var earliest: (id: UInt64, deadline: UInt64)?
            for (id, timer) in timers where id < firstNew && timer.deadline <= now
                && timer.deadline < (earliest?.deadline ?? .max) {
                earliest = (id, timer.deadline)
            }
            guard let due = earliest, let timer = timers.removeValue(forKey: due.id) else { return }
            timer.body()
        }
    }

    private func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 64)
        // A short read emptied it: no second read just to see EAGAIN.
        while read(wakeRead, &buffer, buffer.count) == buffer.count {}
    }
}

/// A plain mutex; `Synchronization.Mutex` needs newer deployment targets on some hosts.
public final class Lock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    public init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

/// A value behind a `Lock`.
public final class LockedValue<Value>: @unchecked Sendable {
    private let lock = Lock()
    private var value: Value
    public init(_ value: Value) { self.value = value }
    public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        try lock.withLock { try body(&value) }
    }
}
