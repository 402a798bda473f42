import ArgumentParser
import TetherClient
import TetherIO

/// Prints errors as `tether: HOST: cause` and turns them into the exit code: 255 for
/// connection-level failures (like ssh), 1 for everything else. Each failure is kept, so
/// `--json` output lists it as an error object beside the results (`FailureJSON`).
final class Failures: Sendable {
    /// One reported failure: which computer (and session, if it was about one) and why.
    struct Entry: Sendable {
        var host: String?
        var session: LocalSession?
        var error: any Error
        var exitCode: Int32
    }

    private let lock = Lock()
    nonisolated(unsafe) private var reported: [Entry] = []  // guarded by lock

    static func exitCode(for error: Error) -> Int32 {
        if let error = error as? TetherClientError, error.isConnectionLevel { return 255 }
        return 1
    }

    static func message(for error: Error, host: String? = nil) -> String {
        if let error = error as? TetherClientError {
            var copy = error
            if copy.host == nil { copy.host = host }
            return copy.description
        }
        if let host { return "\(host): \(error)" }
        return "\(error)"
    }

    /// Reports one failure and remembers it (and its exit code).
    @discardableResult
    func report(_ error: Error, host: String? = nil, session: LocalSession? = nil) -> Int32 {
        Terminal.shared.err("tether: \(Self.message(for: error, host: host))\n")
        let code = Self.exitCode(for: error)
        let computer = host ?? (error as? TetherClientError)?.host ?? session?.computerName
        lock.withLock { reported.append(Entry(host: computer, session: session, error: error, exitCode: code)) }
        return code
    }

    /// Everything reported so far, in order.
    var entries: [Entry] { lock.withLock { reported } }

    /// 255 if any failure was connection-level, else 1 if any, else 0.
    var exitCode: Int32 {
        lock.withLock {
            if reported.contains(where: { $0.exitCode == 255 }) { return 255 }
            return reported.isEmpty ? 0 : 1
        }
    }

    var isEmpty: Bool { lock.withLock { reported.isEmpty } }

    /// Ends the command with the collected exit code (if not 0).
    func exitIfFailed() throws {
        let code = exitCode
        if code != 0 { throw ExitCode(code) }
    }
}

/// Runs the body; a thrown error is reported and becomes the exit code. With `json`, the
/// error is also printed as the one element of a JSON array, so a `--json` caller always
/// gets JSON on stdout (docs/json.md).
func reportingErrors(json: Bool = false, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch let error as TetherClientError {
        let failures = Failures()
        let code = failures.report(error)
        if json { Terminal.shared.out(FailureJSON.array(failures.entries)) }
        throw ExitCode(code)
    }
}
