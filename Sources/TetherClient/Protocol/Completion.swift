import TetherIO

/// A value produced once on the loop and awaited by any number of tasks.
final class Completion<Value: Sendable>: @unchecked Sendable {
    private let lock = Lock()
    private var result: Result<Value, Error>?
    private var waiters: [CheckedContinuation<Value, Error>] = []

    /// The first result wins; later ones are ignored.
    func resolve(_ newResult: Result<Value, Error>) {
        let toResume: [CheckedContinuation<Value, Error>] = lock.withLock {
            guard result == nil else { return [] }
            result = newResult
            defer { waiters.removeAll() }
            return waiters
        }
        for waiter in toResume { waiter.resume(with: newResult) }
    }

    var isResolved: Bool { lock.withLock { result != nil } }

    /// The result if already there.
    var current: Result<Value, Error>? { lock.withLock { result } }

    var value: Value {
        get async throws {
            // Already there — a command's id by the time `invoke` has its answer, its exit
            // status once its output ended —: no suspension, so no round through the
            // task's executor (on the client's loop, a queued job and a loop round each).
            if let ready = current { return try ready.get() }
            return try await withCheckedThrowingContinuation { continuation in
                let ready: Result<Value, Error>? = lock.withLock {
                    if let result { return result }
                    waiters.append(continuation)
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        }
    }
}
