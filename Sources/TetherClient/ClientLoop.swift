import Glibc
import Foundation
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
            return try ClientLoop()
        } catch {
            fatalError("tether: cannot start the client event loop: \(error)")
        }
    }()

    private init() throws {
        // A peer that goes away must surface as EPIPE on write, not kill the process.
        Signals.ignore(SIGPIPE)
        reactor = try Reactor()
        let reactor = self.reactor
        let thread = Thread { reactor.run() }
        thread.name = "tether-client-loop"
        thread.start()
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
            reactor.execute {
                body { continuation.resume(with: $0) }
            }
        }
    }
}

/// Carries a loop-confined object across a `Sendable` boundary. Only ever unwrap it on
/// the loop thread (inside `reactor.execute` or a loop callback).
struct LoopBound<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
