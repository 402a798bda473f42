import XCTest
import TetherProtocol
import TetherTestSupport

/// A session is a persistent bash: state set over one connection is there over the next;
/// streams, exit status, arguments and stdin travel intact; interrupt stops only the command.
final class SSHSessionStateTests: HostTestCase {
    func testVariablesAndFunctionsPersistAcrossConnections() throws {
        let first = try connect()
        let session = try openSession(first, name: "state")
        try run(first, "x=41; f() { echo $((x+1)); }")
        first.close()

        let second = try connect()
        XCTAssertEqual(try second.session(session.instanceID).state, .running)
        _ = try second.attach(channel: 1, instanceID: session.instanceID)
        XCTAssertEqual(try run(second, "f"), "42\n")
    }

    func testStdoutStderrAndExitStatusArriveSeparately() throws {
        let client = try connect()
        _ = try openSession(client, name: "streams")
        let result = try client.invoke(channel: 1, script: "echo out; echo err >&2; echo more; (exit 3)")
        XCTAssertEqual(result.stdoutText, "out\nmore\n")
        XCTAssertEqual(result.stderrText, "err\n")
        XCTAssertEqual(result.exitStatus, 3)

        // One command's records: started first, ended last, numbered without gaps.
        XCTAssertEqual(result.records.first?.kind, .commandStarted)
        XCTAssertEqual(result.records.last?.kind, .commandEnded)
        let seqs = result.records.map(\.seq)
        XCTAssertEqual(seqs, Array(seqs[0]...(seqs[0] + UInt64(seqs.count) - 1)), "sequence numbers \(seqs)")

        let next = try client.invoke(channel: 1, script: "echo again")
        XCTAssertEqual(next.stdoutText, "again\n")
        XCTAssertEqual(next.exitStatus, 0)
        XCTAssertGreaterThan(next.commandID, result.commandID)
        XCTAssertGreaterThan(next.records.first!.seq, result.records.last!.seq)
    }

    func testArgumentsArriveAsPositionalParameters() throws {
        let client = try connect()
        _ = try openSession(client, name: "args")
        let result = try client.invoke(channel: 1, script: #"printf '[%s]' "$@"; echo " $#""#,
                                       args: ["a b", "", "$HOME", "c'd"])
        XCTAssertEqual(result.stdoutText, "[a b][][$HOME][c'd] 4\n")
        XCTAssertEqual(result.exitStatus, 0)
    }

    func testStdinReachesTheCommand() throws {
        let client = try connect()
        _ = try openSession(client, name: "stdin")
        let upper = try client.invoke(channel: 1, script: "tr a-z A-Z", stdin: Array("hello tether\n".utf8))
        XCTAssertEqual(upper.stdoutText, "HELLO TETHER\n")
        XCTAssertEqual(upper.exitStatus, 0)

        let big = [UInt8]((0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
        let counted = try client.invoke(channel: 1, script: "wc -c", stdin: big)
        XCTAssertEqual(counted.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "300000")

        // Without stdin the command reads /dev/null and does not hang.
        let noInput = try client.invoke(channel: 1, script: "cat; echo done", timeout: 10)
        XCTAssertEqual(noInput.stdoutText, "done\n")
    }

    func testInterruptStopsTheCommandAndKeepsTheSession() throws {
        let client = try connect()
        _ = try openSession(client, name: "interrupt")
        try run(client, "x=41")
        let commandID = try client.startCommand(channel: 1, script: "echo sleeping; sleep 100")
        // Interrupt once the command is surely inside `sleep` (see the test below for
        // an interrupt that races the start).
        _ = try client.nextFrame(what: "the first output of sleep 100") {
            $0.type == .record && $0.channel == 1 && (try? Record.decode($0.payload).kind) == .stdout
        }
        let started = Deadline.now()
        try client.signal(channel: 1, .interrupt)
        let result = try client.collect(channel: 1, commandID: commandID, timeout: 10)
        let seconds = Double(Deadline.now() - started) / 1e9
        XCTAssertLessThan(seconds, 5, "interrupt took \(seconds) s")
        XCTAssertEqual(result.exitStatus, 128 + 2, "sleep killed by SIGINT")
        XCTAssertEqual(try run(client, "echo $x"), "41\n")
    }

    /// Ctrl-C right after `started` (before bash has even begun the command) must not be
    /// lost. Repeated, because the window is narrow.
    func testInterruptRightAfterStartIsNotLost() throws {
        let client = try connect()
        _ = try openSession(client, name: "eager-interrupt")
        for attempt in 1...10 {
            let commandID = try client.startCommand(channel: 1, script: "sleep 100")
            try client.signal(channel: 1, .interrupt)
            let result = try client.collect(channel: 1, commandID: commandID, timeout: 5)
            XCTAssertEqual(result.exitStatus, 128 + 2, "attempt \(attempt)")
        }
        XCTAssertEqual(try run(client, "echo alive"), "alive\n")
    }
}
