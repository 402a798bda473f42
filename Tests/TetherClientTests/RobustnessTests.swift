import XCTest
import Foundation
import Glibc
import TetherTestSupport

/// Output volume, Ctrl-C, and a connection killed under a running command.
final class RobustnessTests: CLITestCase {
    func testLargeOutputArrivesCompleteAndInOrder() throws {
        try check(["new", "alpha", "--name", "bulk"])
        // ~21 MB: more than the client's 4 MiB queue and the session's 16 MiB buffer.
        let result = try tether(["invoke", "--name", "bulk", "--", "seq 1 3000000"], timeout: 120)
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        let expected = (1...3_000_000).map(String.init).joined(separator: "\n") + "\n"
        XCTAssertEqual(result.stdout.count, expected.utf8.count)
        XCTAssertTrue(result.stdoutText == expected, "output differs from seq 1 3000000")
        // Everything was acknowledged: nothing left to receive.
        let after = try tether(["receive", "--name", "bulk"])
        XCTAssertEqual(after.stdout.count, 0)
    }

    func testCtrlCInterruptsTheRemoteCommandAndTheSessionLivesOn() throws {
        try check(["new", "alpha", "--name", "int"])
        let started = Date()
        let run = try startTether(["invoke", "--name", "int", "--", "echo started; sleep 30; echo never"], label: "int")
        try eventually("the remote command started") { run.stdoutText.contains("started") }
        XCTAssertEqual(kill(run.pid, SIGINT), 0)
        let status = try run.wait(timeout: 20)
        XCTAssertNotEqual(status, .exited(0), run.stderrText)
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
        XCTAssertFalse(run.stdoutText.contains("never"))
        XCTAssertTrue(run.stderrText.contains("interrupting"), run.stderrText)
        XCTAssertEqual(try check(["invoke", "--name", "int", "--", "echo still here"]), "still here\n")
    }

    func testSecondCtrlCStopsWaitingWith130() throws {
        try check(["new", "alpha", "--name", "stubborn"])
        let run = try startTether(["invoke", "--name", "stubborn", "--", "trap '' INT; echo started; sleep 20"], label: "stubborn")
        try eventually("the remote command started") { run.stdoutText.contains("started") }
        XCTAssertEqual(kill(run.pid, SIGINT), 0)
        try eventually("the first Ctrl-C was handled") { run.stderrText.contains("interrupting") }
        XCTAssertEqual(kill(run.pid, SIGINT), 0)
        XCTAssertEqual(try run.wait(timeout: 10), .exited(130))
    }

    func testKilledConnectionFailsWith255AndReceiveCollectsTheRest() throws {
        try check(["new", "alpha", "--name", "resume"])
        let script = "for i in $(seq 1 40); do echo $i; sleep 0.05; done"
        // Without automatic resume (ResumeTests cover that): the loss itself is the subject.
        let run = try startTether(["invoke", "--name", "resume", "--reconnect-timeout", "0", "--", script], label: "resume")
        try eventually("output began") { run.stdoutText.split(separator: "\n").count >= 5 }
        for pid in alpha.subsystemPIDs() { try Processes.kill9(pid) }
        XCTAssertEqual(try run.wait(timeout: 20), .exited(255), run.stderrText)
        XCTAssertTrue(run.stderrText.hasPrefix("tether: alpha: "), run.stderrText)
        XCTAssertTrue(run.stderrText.contains("tether receive"), run.stderrText)

        let rest = try tether(["receive", "--name", "resume"], timeout: 30)
        XCTAssertEqual(rest.status, .exited(0), rest.stderrText)
        let first = run.stdoutText.split(separator: "\n").compactMap { Int($0) }
        let second = rest.stdoutText.split(separator: "\n").compactMap { Int($0) }
        XCTAssertEqual(first, Array(1...first.count), "the first part is in order")
        let start = try XCTUnwrap(second.first)
        XCTAssertEqual(second, Array(start...40), "receive continues in order to the end")
        // Nothing lost: receive starts at or before the first unprinted line.
        XCTAssertLessThanOrEqual(start, first.count + 1)
    }
}
