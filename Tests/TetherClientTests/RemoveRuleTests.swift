import XCTest
import Foundation
import Glibc
import TetherTestSupport

/// `remove` follows the rule `connect`, `invoke` and `receive` follow: a session another
/// client holds is taken (here: ended) only with `--force`; and the client whose command
/// was followed learns who removed the session instead of seeing it die with 143.
final class RemoveRuleTests: TwoClientTestCase {
    func testRemovingASessionAnotherClientHoldsNeedsForceAndTellsTheFollower() throws {
        try check(["new", "alpha", "--name", "shared"], home: firstHome)
        let follower = try spawnTether(["invoke", "--name", "shared", "--", "echo started; sleep 60; echo never"],
                                       home: firstHome, label: "follower")
        try waitUntil("the command runs") { follower.stdoutText == "started\n" }

        let refused = try tether(["remove", "--computer", "alpha", "--name", "shared"], home: secondHome)
        XCTAssertEqual(refused.status, .exited(1), refused.stderrText)
        XCTAssertTrue(refused.stderrText.contains("is held by client \(machineName)"), refused.stderrText)
        XCTAssertTrue(refused.stderrText.contains("--force"), refused.stderrText)
        XCTAssertNil(follower.exitStatus)
        XCTAssertEqual(alpha.runspacePIDs().count, 1, "the session lives on")
        XCTAssertEqual(try remoteSession("shared", home: secondHome)["state"] as? String, "Disconnected")

        try check(["remove", "--computer", "alpha", "--name", "shared", "--force"], home: secondHome)
        XCTAssertEqual(try follower.wait(), .exited(1), follower.stderrText)
        XCTAssertTrue(follower.stderrText.contains("the session was removed by client \(machineName)"), follower.stderrText)
        XCTAssertEqual(follower.stdoutText, "started\n")

        // The holder itself needs no --force.
        try check(["new", "alpha", "--name", "mine"], home: firstHome)
        try check(["remove", "--name", "mine"], home: firstHome)
    }

    func testAReceiveFollowingARemovedSessionIsToldWho() throws {
        try check(["invoke", "--computer", "alpha", "--in-disconnected-session", "--session-name", "watched",
                   "--", "echo first; sleep 60"], home: firstHome)
        let watcher = try spawnTether(["receive", "--name", "watched"], home: firstHome, label: "watcher")
        try waitUntil("the receive follows") { watcher.stdoutText == "first\n" }
        try check(["remove", "--computer", "alpha", "--name", "watched", "--force"], home: secondHome)
        XCTAssertEqual(try watcher.wait(), .exited(1), watcher.stderrText)
        XCTAssertTrue(watcher.stderrText.contains("the session was removed by client \(machineName)"), watcher.stderrText)
    }
}
