import Glibc
import Dispatch
import TetherIO

/// The one background thread that runs every host connection of a process.
///
/// All hosts share one `Reactor` (one poll(2) loop), so a CLI talking to 200 computers
/// still has one I/O thread. Public handles hop onto it with `execute` and come back
/// through continuations; everything reachable only from the loop needs no locks.
final class ClientLoop: Sendable {
    let reactor: Reactor

    /// Process-wide loop, started on first use.
    static let shared: ClientLoop = {
        do {
            defer { startedFlag.withLock { $0 = true } }
            return try ClientLoop()
        } catch {
            fatalError("tether: cannot start the client event loop: \(error)")
        }
    }()

    private let stopped = DispatchSemaphore(value: 0)
    private static let startedFlag = LockedValue(false)
    static var isStarted: Bool { startedFlag.withLock { $0 } }

    private init() throws {
        // A peer that goes away must surface as EPIPE on write, not kill the process.
        Signals.ignore(SIGPIPE)
        reactor = try Reactor()
        let reactor = self.reactor
        let stopped = self.stopped
        try BackgroundThread.start {
            reactor.run()
            stopped.signal()
        }
    }

    /// Stops the loop and waits until its thread has left it (at most `timeout`).
    ///
    /// Why: a closed libssh2 connection finishes its teardown (channel free, disconnect)
    /// on the loop after reporting the close, and `exit()` runs OpenSSL's atexit cleanup
    /// — the two at once crash in libcrypto. A program that exits stops the loop first.
    func shutdown(timeout: Double = 2) {
        reactor.stop()
        _ = stopped.wait(timeout: .now() + timeout)
    }

    /// Runs `body` on the loop and returns its result to the calling task.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            reactor.execute {
                continuation.resume(with: Result { try body() })
            }
        }
    }

    /// Runs `body` on the loop; `body` completes later by calling `done` exactly once.
    func await<T: Sendable>(_ body: @escaping @Sendable (@escaping (Result<T, Error>) -> Void) -> Void) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            if reactor.isLoopThread {
                // A task running on the loop itself (see `TaskExecutor` below): no hop.
                body { continuation.resume(with: $0) }
            } else {
                reactor.execute {
                    body { continuation.resume(with: $0) }
                }
            }
        }
    }
}

/// Tasks can run on the loop thread itself (`withTaskExecutorPreference`): their awaits
/// on the library then need no thread hop either way.
extension ClientLoop: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        reactor.execute { job.runSynchronously(on: executor) }
    }
}

/// Carries a loop-confined object across a `Sendable` boundary. Only ever unwrap it on
/// the loop thread (inside `reactor.execute` or a loop callback).
struct LoopBound<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
