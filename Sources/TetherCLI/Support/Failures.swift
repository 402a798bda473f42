import ArgumentParser
import TetherClient
import TetherIO

/// Prints errors as `tether: HOST: cause` and turns them into the exit code: 255 for
/// connection-level failures (like ssh), 1 for everything else.
final class Failures: Sendable {
    private let lock = Lock()
    nonisolated(unsafe) private var codes: [Int32] = []  // guarded by lock

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

    /// Reports one failure and remembers its exit code.
    @discardableResult
    func report(_ error: Error, host: String? = nil) -> Int32 {
        Terminal.shared.err("tether: \(Self.message(for: error, host: host))\n")
        let code = Self.exitCode(for: error)
        lock.withLock { codes.append(code) }
        return code
    }

    /// 255 if any failure was connection-level, else 1 if any, else 0.
    var exitCode: Int32 {
        lock.withLock {
            if codes.contains(255) { return 255 }
            return codes.isEmpty ? 0 : 1
        }
    }

    var isEmpty: Bool { lock.withLock { codes.isEmpty } }

    /// Ends the command with the collected exit code (if not 0).
    func exitIfFailed() throws {
        let code = exitCode
        if code != 0 { throw ExitCode(code) }
    }
}

/// Runs the body; a thrown error is reported and becomes the exit code.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch let error as TetherClientError {
        throw ExitCode(Failures().report(error))
    }
}
