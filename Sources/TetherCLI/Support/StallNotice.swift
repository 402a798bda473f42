import TetherClient
import TetherIO
import TetherProtocol

/// Nothing waits silently: when a session's runspace has not answered (the attach, the
/// start of a command) for `after` seconds, one line on stderr says what the CLI waits
/// for and why, as far as the host's registry knows — a command of someone else's
/// running, or a runspace that doesn't answer (stopped with SIGSTOP, overloaded). The
/// wait goes on; Ctrl-C works as usual.
enum StallNotice {
    /// `TETHER_STALL_NOTICE` overrides it (seconds).
    static let after: Double = Environment.get("TETHER_STALL_NOTICE").flatMap(Double.init) ?? 3

    static func around<T: Sendable>(_ host: RemoteHost, instanceID: String, name: String, waitingFor what: String,
                                    _ body: () async throws -> T) async throws -> T {
        let notice = Task {
            try await Task.sleep(nanoseconds: UInt64(after * 1e9))
            let label = name.isEmpty ? instanceID : "'\(name)'"
            var why = "it is busy with another command, or its runspace does not answer"
            // The registry answers even when the runspace doesn't.
            if let info = try? await host.sessions(filter: SessionFilter(instanceID: instanceID)).first?.info {
                if info.busy {
                    why = "it is running another command; yours starts when that one ends"
                } else {
                    why = "its runspace\(info.runspacePID.map { " (pid \($0))" } ?? "") does not answer: stopped (SIGSTOP) or overloaded"
                }
            }
            try Task.checkCancellation()
            Terminal.shared.err("tether: \(host.computerName): still waiting for session \(label) \(what) after \(Int(after)) s: \(why); Ctrl-C interrupts\n")
        }
        defer { notice.cancel() }
        return try await body()
    }
}
