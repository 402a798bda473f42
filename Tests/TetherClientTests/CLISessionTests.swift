import XCTest
import Foundation
import TetherTestSupport

/// One computer, one client: sessions created, used by separate `tether` processes,
/// listed, disconnected, received and removed.
final class CLISessionTests: CLITestCase {
    func testStateIsKeptAcrossSeparateInvokeProcesses() throws {
        let table = try check(["new", "alpha", "--name", "work"])
        XCTAssertTrue(table.contains("work"), table)
        try check(["invoke", "--name", "work", "--", "answer=42; cd /tmp; greet() { echo \"hi $1\"; }"])
        let out = try check(["invoke", "--name", "work", "--", "echo \"$answer $PWD\"; greet there"])
        XCTAssertEqual(out, "42 /tmp\nhi there\n")
        // One runspace serves both commands: the same session, not a new shell each time.
        XCTAssertEqual(alpha.runspacePIDs().count, 1)
    }

    /// The three ways a new user ended a session: each ends only its command.
    func testExitErrexitAndScriptsEndOnlyTheCommand() throws {
        try check(["new", "alpha", "--name", "habits"])
        try check(["invoke", "--name", "habits", "--", "kept=yes; cd /tmp; sleep 60 & echo started"])
        let strict = try tether(["invoke", "--name", "habits", "--", "set -euo pipefail; false; echo no"])
        XCTAssertEqual(strict.status, .exited(1), strict.stderrText)
        XCTAssertEqual(strict.stdoutText, "")
        let exit = try tether(["invoke", "--name", "habits", "--", "exit 3"])
        XCTAssertEqual(exit.status, .exited(3), exit.stderrText)
        let script = workDirectory + "/deploy.sh"
        try writeFile(script, "#!/bin/bash\nset -euo pipefail\necho \"deploying $1\"\n[ \"$1\" = bad ] && false\nexit 0\n")
        let good = try tether(["invoke", "--name", "habits", "--file", script, "--", "v1"])
        XCTAssertEqual(good.status, .exited(0), good.stderrText)
        XCTAssertEqual(good.stdoutText, "deploying v1\n")
        let bad = try tether(["invoke", "--name", "habits", "--file", script, "--", "bad"])
        XCTAssertEqual(bad.status, .exited(1), bad.stderrText)
        let after = try check(["invoke", "--name", "habits", "--", "echo $kept $PWD; jobs | wc -l"])
        XCTAssertEqual(after, "yes /tmp\n1\n")
    }

    func testStreamsArgumentsExitStatusAndStdin() throws {
        try check(["new", "alpha", "--name", "io"])
        let result = try tether(["invoke", "--name", "io", "--", "echo out; echo err >&2; echo \"$1|$2\"; sh -c 'exit 7'", "a b", "c"])
        XCTAssertEqual(result.status, .exited(7), result.stderrText)
        XCTAssertEqual(result.stdoutText, "out\na b|c\n")
        XCTAssertEqual(result.stderrText, "err\n")

        let upper = try check(["invoke", "--name", "io", "--", "tr a-z A-Z"], stdin: Array("hello\nworld\n".utf8))
        XCTAssertEqual(upper, "HELLO\nWORLD\n")

        // Bigger than any one record or frame, through stdin and back.
        let big = (0..<200_000).map { "line \($0)\n" }.joined()
        let digest = try check(["invoke", "--name", "io", "--", "wc -c"], stdin: Array(big.utf8))
        XCTAssertEqual(digest.trimmingCharacters(in: .whitespacesAndNewlines), String(big.utf8.count))
        let echoed = try check(["invoke", "--name", "io", "--", "cat"], stdin: Array(big.utf8))
        XCTAssertEqual(echoed.utf8.count, big.utf8.count)
        XCTAssertTrue(echoed == big)
    }

    func testGetShowsTableAndJSON() throws {
        try check(["new", "alpha", "--name", "listed"])
        let table = try check(["get"])
        let lines = table.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first?.split(separator: " ").map(String.init),
                       ["Id", "Name", "ComputerName", "State", "ConfigurationName", "Availability"], table)
        XCTAssertTrue(lines.contains { $0.contains("listed") && $0.contains("alpha") && $0.contains("Opened") && $0.contains("Available") }, table)

        let sessions = try getJSON()
        XCTAssertEqual(sessions.count, 1)
        let session = try XCTUnwrap(sessions.first)
        XCTAssertEqual(session["id"] as? Int, 1)
        XCTAssertEqual(session["name"] as? String, "listed")
        XCTAssertEqual(session["computerName"] as? String, "alpha")
        XCTAssertEqual(session["state"] as? String, "Opened")
        XCTAssertEqual(session["availability"] as? String, "Available")
        XCTAssertNotNil(session["configurationName"] as? String)
        XCTAssertEqual((session["instanceId"] as? String)?.count, 36)

        // --computer lists what the host has; the same session keeps its Id.
        let remote = try getJSON(["--computer", "alpha"])
        XCTAssertEqual(remote.map { $0["id"] as? Int }, [1])
        // Filters.
        XCTAssertEqual(try getJSON(["--state", "disconnected"]).count, 0)
        XCTAssertEqual(try getJSON(["--name", "list*"]).count, 1)
        XCTAssertEqual(try getJSON(["--id", "2..9"]).count, 0)
    }

    func testRemoveEndsTheSessionAndForgetsIt() throws {
        try check(["new", "alpha", "--name", "doomed"])
        XCTAssertEqual(alpha.runspacePIDs().count, 1)
        try check(["remove", "--name", "doomed"])
        XCTAssertEqual(try getJSON().count, 0)
        XCTAssertEqual(try getJSON(["--computer", "alpha"]).count, 0)
        let again = try tether(["invoke", "--name", "doomed", "--", "true"])
        XCTAssertEqual(again.status, .exited(1))
        // Ids are never reused.
        try check(["new", "alpha", "--name", "next"])
        XCTAssertEqual(try getJSON().first?["id"] as? Int, 2)
    }

    func testDisconnectedSessionOutputIsReceivedOnce() throws {
        let started = try check(["invoke", "--computer", "alpha", "--in-disconnected-session", "--session-name", "bg",
                                 "--", "echo one; echo two >&2; sleep 1; echo three; sh -c 'exit 4'"])
        XCTAssertTrue(started.contains("bg") && started.contains("Disconnected"), started)
        let received = try tether(["receive", "--name", "bg"])
        XCTAssertEqual(received.status, .exited(4), received.stderrText)
        XCTAssertEqual(received.stdoutText, "one\nthree\n")
        XCTAssertEqual(received.stderrText, "two\n")
        // Everything was acknowledged: a second receive has nothing new.
        let again = try tether(["receive", "--name", "bg"])
        XCTAssertEqual(again.stdoutText, "")
        XCTAssertEqual(again.stderrText, "")
        // receive connected the session to this client.
        XCTAssertEqual(try getJSON().first?["state"] as? String, "Opened")
    }

    func testAnotherClientIsRefusedUntilForced() throws {
        try check(["new", "alpha", "--name", "shared"])
        let otherHome = workDirectory + "/other-home"
        let refused = try tether(["connect", "--computer", "alpha", "--name", "shared"], home: otherHome)
        XCTAssertEqual(refused.status, .exited(1), refused.stderrText)
        XCTAssertTrue(refused.stderrText.contains("held by"), refused.stderrText)
        XCTAssertTrue(refused.stderrText.contains("--force"), refused.stderrText)

        // The first client sees itself as holder; the other sees Disconnected/Busy.
        let theirs = try getJSON(["--computer", "alpha"], home: otherHome)
        XCTAssertEqual(theirs.first?["state"] as? String, "Disconnected")
        XCTAssertEqual(theirs.first?["availability"] as? String, "Busy")

        let forced = try tether(["connect", "--computer", "alpha", "--name", "shared", "--force"], home: otherHome)
        XCTAssertEqual(forced.status, .exited(0), forced.stderrText)
        XCTAssertTrue(forced.stderrText.contains("took over"), forced.stderrText)
        XCTAssertEqual(try getJSON(home: otherHome).first?["state"] as? String, "Opened")
        XCTAssertEqual(try getJSON().first?["state"] as? String, "Disconnected")

        try check(["disconnect", "--name", "shared"], home: otherHome)
        XCTAssertEqual(try getJSON().first?["availability"] as? String, "None")
        try check(["connect", "--name", "shared"])
        XCTAssertEqual(try getJSON().first?["state"] as? String, "Opened")
    }
}
