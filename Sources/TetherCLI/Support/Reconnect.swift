import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import TetherClient
import TetherIO

/// `--reconnect-timeout`, taken by the verbs that follow a command's output.
struct ReconnectArguments: ParsableArguments {
    @Option(name: .customLong("reconnect-timeout"), help: ArgumentHelp(
        "Seconds to keep trying to reconnect after the connection is lost while following output, then resume where it stopped (default 300; 0: exit 255 at once, as before).",
        valueName: "SEC"))
    var reconnectTimeout: Double = 300

    func validate() throws {
        if !(reconnectTimeout >= 0) || !reconnectTimeout.isFinite {
            throw ValidationError("--reconnect-timeout must be a number of seconds, 0 or more")
        }
    }
}

/// Which targets are between a lost connection and a resumed one, for Ctrl-C: a target
/// that is reconnecting has nothing to interrupt, so waiting for it is all Ctrl-C can stop.
final class ReconnectingTargets: Sendable {
    private let lock = Lock()
    nonisolated(unsafe) private var count = 0  // guarded by lock

    func begin() { lock.withLock { count += 1 } }
    func end() { lock.withLock { count -= 1 } }
    var any: Bool { lock.withLock { count > 0 } }
}

/// After a lost connection: reconnects to the computer and resumes the followed output
/// where this process stopped — first attempt at once, then every 25, 50, 50… ms for the
/// first `briskFor` seconds (a refused connect costs about a millisecond, and a restored
/// link is then picked up within 50 ms plus one SSH login), then doubling to 200 ms for a
/// long outage — until the deadline. One per target: several targets resume
/// independently (the pool shares one new connection per computer between them).
struct Reconnector {
    let computerName: String
    let pool: HostPool
    let timeout: Double
    let reconnecting: ReconnectingTargets

    static let firstDelay = 0.025
    static let briskDelay = 0.05
    static let briskFor = 10.0
    static let maxDelay = 0.2

    /// The resumed reception and the connection it is on. Throws the error to report if
    /// it gives up (deadline, or the session can't be resumed: closed, removed, taken).
    func resume(_ point: ResumePoint, lost: RemoteHost, cause: TetherClientError) async throws -> (Reception, RemoteHost) {
        Terminal.shared.err("tether: \(computerName): connection lost (\(cause.message)); reconnecting…\n")
        // The resumed stream follows the command with a reception, which drops the
        // replay's records up to the resume point and may stop at a seq of its own: only
        // this process knows which records to write, so it writes them itself.
        KeeperDirectOutput.withdraw()
        let (reception, host) = try await retry(lost: lost, cause: cause, instanceID: point.instanceID) { host in
            try await host.session(instanceID: point.instanceID, name: point.sessionName).resume(from: point)
        }
        if reception.stdinCut {
            Terminal.shared.err("tether: \(computerName): stdin could not be resumed: the command's input was closed before all of it arrived (tether exits 255 when the command ends)\n")
        }
        return (reception, host)
    }

    /// After a connection lost before the host confirmed the command's start: invokes
    /// again on a new connection with the same token (`invoke`), which the host answers by
    /// rejoining the command the lost request started, or by starting it now — never twice.
    func reinvoke(lost: RemoteHost, cause: TetherClientError, instanceID: String,
                  _ invoke: @escaping @Sendable (RemoteHost) async throws -> Invocation) async throws -> (Invocation, RemoteHost) {
        Terminal.shared.err("tether: \(computerName): connection lost before the command's start was confirmed (\(cause.message)); reconnecting…\n")
        return try await retry(lost: lost, cause: cause, instanceID: instanceID, invoke)
    }

    /// After the connection was lost while it was still being opened (through the keeper:
    /// the link it was opened on went down under it): nothing of the command was sent, so
    /// a new connection is all it takes — then the invoke goes on as if nothing happened.
    func reopen(cause: TetherClientError) async throws -> RemoteHost {
        Terminal.shared.err("tether: \(computerName): connection lost while opening it (\(cause.message)); reconnecting…\n")
        return try await retry(lost: nil, cause: cause, instanceID: nil) { host in host }.1
    }

    /// Reconnects and runs `body` on the new connection until it succeeds, a
    /// non-connection error ends it, or the deadline passes. `lost` nil: there was no
    /// connection yet (`reopen`), so a fresh one, and no command to collect if it fails.
    private func retry<T: Sendable>(lost: RemoteHost?, cause: TetherClientError, instanceID: String?,
                                    _ body: @escaping @Sendable (RemoteHost) async throws -> T) async throws -> (T, RemoteHost) {
        reconnecting.begin()
        defer { reconnecting.end() }
        let lostAt = Date()
        let deadline = lostAt.addingTimeInterval(timeout)
        var delay = 0.0  // the first attempt goes at once
        var lastError = cause
        var attempt = lost
        while true {
            do {
                let host = if let attempt {
                    try await pool.reconnect(computerName, replacing: attempt, deadline: deadline)
                } else {
                    try await pool.reopen(computerName, deadline: deadline)
                }
                attempt = host
                let result = try await body(host)
                Terminal.shared.err("tether: \(computerName): reconnected\n")
                return (result, host)
            } catch let error as TetherClientError where error.isConnectionLevel && error.kind != .versionMismatch {
                lastError = error
            }
            let cap = Date().timeIntervalSince(lostAt) < Self.briskFor ? Self.briskDelay : Self.maxDelay
            delay = delay == 0 ? Self.firstDelay : min(delay * 2, cap)
            if Date().addingTimeInterval(delay) >= deadline { break }
            try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
        }
        guard let instanceID else {
            throw TetherClientError(.connectionLost, host: computerName,
                "could not reconnect within \(Self.seconds(timeout)) (last: \(lastError.message)); nothing was sent: the command did not run")
        }
        throw TetherClientError(.connectionLost, host: computerName,
            "could not reconnect within \(Self.seconds(timeout)) (last: \(lastError.message)); the command goes on on the host: `tether receive --computer \(computerName) --instance-id \(instanceID)` collects its output")
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    /// The message for a lost connection nobody resumes (`--reconnect-timeout 0`).
    static func notResumed(_ error: TetherClientError, computerName: String) -> TetherClientError {
        TetherClientError(.connectionLost, host: computerName,
            "\(error.message) (the command goes on on the host; `tether receive` collects its output)")
    }
}

/// Where a target's output comes from: the command as invoked, or — after a lost
/// connection — the reception that resumed it.
enum FollowedOutput: Sendable {
    case invocation(Invocation)
    case reception(Reception)

    var output: OutputSequence {
        switch self {
        case .invocation(let invocation): invocation.output
        case .reception(let reception): reception.output
        }
    }

    var resumePoint: ResumePoint {
        switch self {
        case .invocation(let invocation): invocation.resumePoint
        case .reception(let reception): reception.resumePoint
        }
    }

    var session: RemoteSession {
        switch self {
        case .invocation(let invocation): invocation.session
        case .reception(let reception): reception.session
        }
    }
}
