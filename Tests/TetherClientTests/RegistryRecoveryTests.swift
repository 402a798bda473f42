import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// Issue 11 item 13: a registry whose session table is gone or damaged recovers the
/// running sessions from their runspaces' sockets (each says who it is), says so, and
/// keeps managing them — they work, and they still time out.
final class RegistryRecoveryTests: TwoClientTestCase {
    func testLostOrDamagedTableIsRecoveredFromTheRunspaces() throws {
        for damage in ["deleted", "damaged"] {
            try recover(after: damage)
        }
    }

    private func recover(after damage: String) throws {
        let kept = "kept-\(damage)", idle = "idle-\(damage)"
        try check(["new", "alpha", "--name", kept], home: firstHome)
        try check(["invoke", "--name", kept, "--", "x=\(damage)"], home: firstHome)
        try check(["new", "alpha", "--name", idle, "--idle-timeout", "3"], home: firstHome)
        try check(["disconnect", "--name", idle], home: firstHome)
        let runspaces = alpha.runspacePIDs()

        let table = alpha.stateDirectory + "/sessions.json"
        let registry = try XCTUnwrap(alpha.registryPID(), "no registry runs")
        try Processes.kill9(registry)
        try Processes.waitForExit(registry)
        if damage == "deleted" {
            XCTAssertEqual(unlink(table), 0)
        } else {
            try writeFile(table, "{\"formatVersion\": 1, \"sessions\": [tru")
        }

        // The next connection starts a registry that finds both runspaces and says so.
        let listed = try tether(["get", "--computer", "alpha"], home: secondHome)
        XCTAssertEqual(listed.status, .exited(0), listed.stderrText)
        XCTAssertTrue(listed.stdoutText.contains(kept) && listed.stdoutText.contains(idle), listed.stdoutText)
        XCTAssertTrue(listed.stderrText.contains("recovered from its runspace host"), listed.stderrText)
        XCTAssertTrue(alpha.hostLog.contains("'\(kept)': recovered from its runspace host"), alpha.hostLog)
        XCTAssertEqual(alpha.runspacePIDs(), runspaces, "the same runspaces, none restarted")
        let rows = try getJSON(["--computer", "alpha", "--name", idle], home: secondHome)
        XCTAssertEqual(rows.first?["idleTimeout"] as? Double ?? (rows.first?["idleTimeout"] as? Int).map(Double.init), 3,
                       "the idle timeout comes back from the runspace: \(rows)")

        // They work: the interpreter's state is the one from before.
        XCTAssertEqual(try check(["invoke", "--name", kept, "--", "echo \"$x\""], home: firstHome), "\(damage)\n")
        // ... and the idle one still times out.
        try waitUntil("the recovered idle session timed out", timeout: 30) {
            !(try getJSON(["--computer", "alpha"], home: firstHome)).contains { $0["name"] as? String == idle }
        }
        try check(["remove", "--name", kept], home: firstHome)
    }
}
