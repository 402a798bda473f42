import XCTest
import Foundation
import Glibc
import TetherTestSupport

/// Nothing waits silently: an invoke whose session does not start the command says, after
/// a few seconds, what it waits for — and Ctrl-C gets the CLI out even when the runspace
/// can't answer at all.
final class StalledSessionTests: CLITestCase {
    func testAStoppedRunspaceIsReportedAndCtrlCTwiceLeaves() throws {
        try check(["new", "alpha", "--name", "frozen"])
        let runspace = try XCTUnwrap(alpha.runspacePIDs().first)
        XCTAssertEqual(kill(runspace, SIGSTOP), 0)
        defer { kill(runspace, SIGCONT) }
        let cli = try startTether(["invoke", "--name", "frozen", "--", "echo thawed"], label: "frozen")
        try eventually(timeout: 30, "the stall is reported") { cli.stderrText.contains("still waiting for session 'frozen'") }
        XCTAssertTrue(cli.stderrText.contains("its runspace (pid \(runspace)) does not answer: stopped (SIGSTOP) or overloaded"),
                      cli.stderrText)
        // The first Ctrl-C asks for an interrupt nobody can answer; the second leaves.
        XCTAssertEqual(kill(cli.pid, SIGINT), 0)
        try eventually("the first Ctrl-C is answered") { cli.stderrText.contains("Ctrl-C again to stop waiting") }
        XCTAssertEqual(kill(cli.pid, SIGINT), 0)
        XCTAssertEqual(try cli.wait(), .exited(130), cli.stderrText)

        // Thawed, the session is intact and serves the next command.
        XCTAssertEqual(kill(runspace, SIGCONT), 0)
        XCTAssertEqual(try check(["invoke", "--name", "frozen", "--", "echo alive"]), "alive\n")
    }

    func testABusySessionIsReportedWhileTheCommandWaitsItsTurn() throws {
        try check(["new", "alpha", "--name", "busy"])
        let first = try startTether(["invoke", "--name", "busy", "--", "echo begun; sleep 6"], label: "first")
        try eventually("the first command runs") { first.stdoutText == "begun\n" }
        let second = try tether(["invoke", "--name", "busy", "--", "echo second"])
        XCTAssertEqual(second.status, .exited(0), second.stderrText)
        XCTAssertEqual(second.stdoutText, "second\n")
        XCTAssertTrue(second.stderrText.contains("still waiting for session 'busy' to start the command"), second.stderrText)
        XCTAssertTrue(second.stderrText.contains("it is running another command; yours starts when that one ends"), second.stderrText)
        XCTAssertEqual(try first.wait(), .exited(0))
    }
}
