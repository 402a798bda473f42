import XCTest
import Foundation
import Glibc
import TetherTestSupport

/// Issue 4 end to end: disconnected sessions, two client machines (two TETHER_HOMEs),
/// lossless resume across `kill -9` of clients and of the registry, buffering while
/// nobody reads (block and drop), Broken sessions, idle timeouts. Real sshd, real bash,
/// real `tether` processes.
final class DisconnectedSessionTests: TwoClientTestCase {
    /// 40 lines in about 2 seconds.
    static let loop = "for i in $(seq 1 40); do echo \"line $i\"; sleep 0.05; done"
    static let allLines = (1...40).map { "line \($0)\n" }.joined()

    // MARK: Two clients, one session

    func testSecondClientReceivesEveryLineOnceHoldsItAndFirstIsRefusedUntilReleased() throws {
        let testStart = Date()
        let started = try tether(["invoke", "--computer", "alpha", "--session-name", "loop",
                                  "--in-disconnected-session", "--", Self.loop], home: firstHome)
        XCTAssertEqual(started.status, .exited(0), started.stderrText)
        XCTAssertTrue(started.stdoutText.contains("loop") && started.stdoutText.contains("Disconnected"), started.stdoutText)

        // The second machine has never seen the session: free, nobody holds it.
        let listed = try remoteSession("loop", home: secondHome)
        XCTAssertEqual(listed["state"] as? String, "Disconnected")
        XCTAssertEqual(listed["availability"] as? String, "None")
        XCTAssertTrue(listed["holder"] is NSNull, "\(listed)")

        // It receives every line exactly once, in order (replay of what ran so far, then
        // live to the end), and exits with the loop's status.
        let received = try tether(["receive", "--computer", "alpha", "--name", "loop"], home: secondHome)
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        XCTAssertEqual(lineNumbers(received.stdoutText), Array(1...40))
        XCTAssertEqual(received.stdoutText, Self.allLines)
        XCTAssertEqual(received.stderrText, "")

        // ... and now holds it.
        let mine = try XCTUnwrap(try getJSON(["--name", "loop"], home: secondHome).first)
        XCTAssertEqual(mine["state"] as? String, "Opened")
        XCTAssertEqual(mine["availability"] as? String, "Available")

        // The first machine sees it held elsewhere: by which machine, since when.
        let theirs = try remoteSession("loop", home: firstHome)
        XCTAssertEqual(theirs["state"] as? String, "Disconnected")
        XCTAssertEqual(theirs["availability"] as? String, "Busy")
        let holder = try XCTUnwrap(theirs["holder"] as? [String: Any], "\(theirs)")
        XCTAssertEqual(holder["clientHost"] as? String, machineName)
        let since = try XCTUnwrap(ISO8601DateFormatter().date(from: holder["since"] as? String ?? ""), "\(holder)")
        XCTAssertGreaterThanOrEqual(since.timeIntervalSince(testStart), -2)
        XCTAssertLessThanOrEqual(since.timeIntervalSinceNow, 2)
        let table = try check(["get", "--computer", "alpha"], home: firstHome)
        XCTAssertTrue(table.contains("HeldBy") && table.contains("\(machineName) since "), table)

        // ... and is refused, with a message that says by whom and what to do.
        let refused = try tether(["connect", "--name", "loop"], home: firstHome)
        XCTAssertEqual(refused.status, .exited(1), refused.stderrText)
        XCTAssertTrue(refused.stderrText.contains("held by client \(machineName) (since "), refused.stderrText)
        XCTAssertTrue(refused.stderrText.contains("--force"), refused.stderrText)
        let refusedInvoke = try tether(["invoke", "--name", "loop", "--", "echo nope"], home: firstHome)
        XCTAssertEqual(refusedInvoke.status, .exited(1), refusedInvoke.stderrText)
        XCTAssertEqual(refusedInvoke.stdoutText, "")

        // The interpreter's state is the loop's: the holder sees $i == 40.
        XCTAssertEqual(try check(["invoke", "--name", "loop", "--", "echo \"$i\""], home: secondHome), "40\n")

        // The second lets go; the first connects without --force.
        let released = try check(["disconnect", "--name", "loop"], home: secondHome)
        XCTAssertTrue(released.contains("Disconnected"), released)
        let free = try remoteSession("loop", home: firstHome)
        XCTAssertEqual(free["availability"] as? String, "None")
        let connect = try tether(["connect", "--name", "loop"], home: firstHome)
        XCTAssertEqual(connect.status, .exited(0), connect.stderrText)
        XCTAssertTrue(connect.stdoutText.contains("Opened"), connect.stdoutText)
        XCTAssertFalse(connect.stderrText.contains("took over"), connect.stderrText)
        XCTAssertEqual(try check(["invoke", "--name", "loop", "--", "echo \"$i\""], home: firstHome), "40\n")

        // What the second client received is not repeated to the first.
        let nothing = try tether(["receive", "--name", "loop"], home: firstHome)
        XCTAssertEqual(nothing.status, .exited(0), nothing.stderrText)
        XCTAssertEqual(nothing.stdoutText, "")
        let second = try XCTUnwrap(try getJSON(["--name", "loop"], home: secondHome).first)
        XCTAssertEqual(second["state"] as? String, "Disconnected")
        XCTAssertEqual(second["availability"] as? String, "Busy")
    }

    func testForceTakesOverALiveCommandAndSaysSoAndTheNewHolderGetsTheRest() throws {
        try forceTakesOverALiveCommand()
    }

    // MARK: Clients killed mid-command

    func testClientKilledMidCommandLosesNothingTheSameClientReceivesTheRest() throws {
        try clientKilledMidCommandSameClientReceives()
    }

    func testClientKilledTwiceThenAnotherClientForcesAndReceivesTheRest() throws {
        try clientKilledTwiceAnotherClientForces()
    }

    func testClientKilledWhileItsStdoutIsStuckLosesNothing() throws {
        try clientKilledWhileItsStdoutIsStuck()
    }

    // MARK: Buffering while nobody reads

    func testBlockModeHoldsTheCommandBackAndDeliversTwentyMegabytesByteExact() throws {
        let digestPath = workDirectory + "/block.digest"
        let markerPath = workDirectory + "/block.finished"
        // 15 MB of random bytes as 20 MB of base64, its checksum computed on the host
        // (kept in $digest and written to $1 just before the output starts).
        let script = """
            data=$(mktemp)
            head -c 15000000 /dev/urandom | base64 > "$data"
            digest=$(sha256sum < "$data" | cut -d' ' -f1)
            echo "$digest" > "$1"
            cat "$data"
            rm -f "$data"
            touch "$2"
            """
        let started = try tether(["invoke", "--computer", "alpha", "--session-name", "bulk", "--in-disconnected-session",
                                  "--output-buffering", "block", "--buffer-limit", "1048576",
                                  "--", script, digestPath, markerPath], home: firstHome)
        XCTAssertEqual(started.status, .exited(0), started.stderrText)
        let info = try remoteSession("bulk", home: firstHome)
        XCTAssertEqual(info["outputBuffering"] as? String, "block")
        XCTAssertEqual(info["bufferLimit"] as? Int, 1_048_576)

        // Held back: the output began, and long after an unhindered `cat` of 20 MB would
        // have finished, it has not, and the session is busy.
        try waitUntil("the host computed the checksum", timeout: 60) { access(digestPath, F_OK) == 0 }
        usleep(2_000_000)
        XCTAssertNotEqual(access(markerPath, F_OK), 0, "the command finished although nobody read its output")
        let busy = try remoteSession("bulk", home: firstHome)
        XCTAssertEqual(busy["busy"] as? Bool, true)

        // A late receive gets all of it, byte-exact, and the command runs to its end.
        let reader = try spawnTether(["receive", "--name", "bulk"], home: firstHome, label: "bulk-receive")
        XCTAssertEqual(try reader.wait(timeout: 240), .exited(0), reader.stderrText)
        XCTAssertEqual(reader.stderrText, "")
        XCTAssertEqual(access(markerPath, F_OK), 0, "the command ran to its end once its output was read")
        let expected = try check(["invoke", "--name", "bulk", "--", "echo \"$digest\""], home: firstHome)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(expected.count, 64, expected)
        XCTAssertEqual(String(decoding: Descriptors.readFile(digestPath) ?? [], as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines), expected)
        var size = stat()
        XCTAssertEqual(stat(reader.stdoutPath, &size), 0)
        XCTAssertGreaterThan(size.st_size, 20_000_000)
        XCTAssertEqual(try sha256(ofFile: reader.stdoutPath), expected, "received output differs from what the host produced")
    }

    func testDropModeKeepsTheNewestOutputAndReportsWhatItDropped() throws {
        let markerPath = workDirectory + "/drop.finished"
        // About 290 KB of numbered lines into a 64 KiB buffer nobody reads.
        let script = "for i in $(seq 1 30000); do echo \"line $i\"; done; touch \"$1\""
        let total = (1...30000).reduce(0) { $0 + "line \($1)\n".utf8.count }
        let started = try tether(["invoke", "--computer", "alpha", "--session-name", "lossy", "--in-disconnected-session",
                                  "--output-buffering", "drop", "--buffer-limit", "65536",
                                  "--", script, markerPath], home: firstHome)
        XCTAssertEqual(started.status, .exited(0), started.stderrText)
        // drop never holds the command back: it finishes with nobody reading.
        try waitUntil("the command finished", timeout: 60) { access(markerPath, F_OK) == 0 }
        try waitUntil("the session is idle") { (try remoteSession("lossy", home: firstHome))["busy"] as? Bool == false }

        let received = try tether(["receive", "--computer", "alpha", "--name", "lossy"], home: secondHome)
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        // The newest output arrived, in order and without gaps after the drop.
        let numbers = lineNumbers(received.stdoutText)
        let first = try XCTUnwrap(numbers.first, "nothing received")
        XCTAssertGreaterThan(first, 1, "the oldest output should have been dropped")
        XCTAssertEqual(numbers, Array(first...30000))
        XCTAssertLessThanOrEqual(received.stdout.count, 65536 + 4096)
        // ... and the receiver is told how much was dropped.
        let notice = received.stderrText
        let notices = notice.split(separator: "\n").filter { $0.contains("were dropped while nobody read them") }
        XCTAssertFalse(notices.isEmpty, notice)
        let dropped = notices.compactMap { $0.split(separator: " ").lazy.compactMap { Int($0) }.first }.reduce(0, +)
        // A line cut by a record boundary is still counted whole by the line check, so
        // compare bytes: what was dropped plus what arrived is everything.
        XCTAssertEqual(dropped + received.stdout.count, total, notice)
    }

    // MARK: Host processes killed

    func testRegistryKilledLosesNoSession() throws {
        try check(["new", "alpha", "--name", "kept"], home: firstHome)
        try check(["invoke", "--name", "kept", "--", "x=5"], home: firstHome)
        try check(["invoke", "--computer", "alpha", "--session-name", "running", "--in-disconnected-session",
                   "--", Self.loop], home: firstHome)
        let registry = try XCTUnwrap(alpha.registryPID(), "no registry runs")
        let runspaces = alpha.runspacePIDs()
        XCTAssertEqual(runspaces.count, 2)
        try Processes.kill9(registry)
        try Processes.waitForExit(registry)

        // The next connection starts a new registry, which re-adopts both sessions.
        let sessions = try getJSON(home: firstHome)
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: sessions.map { ($0["name"] as! String, $0["state"] as! String) }),
                       ["kept": "Opened", "running": "Disconnected"])
        XCTAssertNotEqual(alpha.registryPID(), registry)
        XCTAssertEqual(alpha.runspacePIDs(), runspaces, "the runspaces lived on")

        let received = try tether(["receive", "--name", "running"], home: firstHome)
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        XCTAssertEqual(received.stdoutText, Self.allLines)
        XCTAssertEqual(try check(["invoke", "--name", "kept", "--", "echo \"$x\""], home: firstHome), "5\n")
        // The other machine sees them too.
        XCTAssertEqual(try getJSON(["--computer", "alpha"], home: secondHome).count, 2)
    }

    func testSessionWhoseBashIsKilledIsBrokenWhileAnotherKeepsWorking() throws {
        try check(["new", "alpha", "--name", "victim"], home: firstHome)
        try check(["new", "alpha", "--name", "bystander"], home: firstHome)
        try check(["invoke", "--name", "bystander", "--", "y=9"], home: firstHome)
        let victim = try XCTUnwrap(try getJSON(["--name", "victim"], home: firstHome).first)
        let instanceID = try XCTUnwrap(victim["instanceId"] as? String)
        let runspace = try XCTUnwrap(alpha.runspacePID(instanceID: instanceID))
        let bash = try XCTUnwrap(alpha.interpreterPID(ofRunspace: runspace))
        try Processes.kill9(bash)

        var broken: [String: Any] = [:]
        try waitUntil("the session shows Broken") {
            broken = try XCTUnwrap(try getJSON(["--name", "victim"], home: firstHome).first)
            return broken["state"] as? String == "Broken"
        }
        XCTAssertEqual(broken["availability"] as? String, "None")
        let reason = try XCTUnwrap(broken["reason"] as? String, "\(broken)")
        XCTAssertTrue(reason.contains("bash") && reason.contains("9"), reason)
        // Another machine sees it Broken with the reason as well.
        let elsewhere = try remoteSession("victim", home: secondHome)
        XCTAssertEqual(elsewhere["state"] as? String, "Broken")
        XCTAssertEqual(elsewhere["reason"] as? String, reason)

        let refused = try tether(["invoke", "--name", "victim", "--", "echo no"], home: firstHome)
        XCTAssertEqual(refused.status, .exited(1), refused.stderrText)
        XCTAssertTrue(refused.stderrText.contains("broken"), refused.stderrText)

        XCTAssertEqual(try check(["invoke", "--name", "bystander", "--", "echo \"$y\""], home: firstHome), "9\n")
        let table = try getJSON(home: firstHome)
        XCTAssertEqual(table.first { $0["name"] as? String == "bystander" }?["state"] as? String, "Opened")
    }

    // MARK: Idle timeout

    func testIdleTimeoutRemovesADisconnectedSessionAndLaterQueriesSaySo() throws {
        let markerPath = workDirectory + "/idle.finished"
        // A session whose command still runs is not idle, however long it takes.
        try check(["invoke", "--computer", "alpha", "--session-name", "working", "--in-disconnected-session",
                   "--idle-timeout", "2", "--", "sleep 8; touch \"$1\"", markerPath], home: firstHome)
        try check(["invoke", "--computer", "alpha", "--session-name", "idle", "--in-disconnected-session",
                   "--idle-timeout", "2", "--", "echo bye"], home: firstHome)
        let idle = try remoteSession("idle", home: firstHome)
        XCTAssertEqual(idle["idleTimeout"] as? Double, 2)
        XCTAssertEqual(idle["state"] as? String, "Disconnected")
        let instanceID = try XCTUnwrap(idle["instanceId"] as? String)

        try waitUntil("the idle session was removed") {
            try getJSON(["--computer", "alpha", "--name", "idle"], home: secondHome).isEmpty
        }
        // Later queries say what happened, whether from this client's list or the host.
        let gone = try XCTUnwrap(try getJSON(["--instance-id", instanceID], home: firstHome).first)
        XCTAssertEqual(gone["state"] as? String, "Closed")
        let reason = try XCTUnwrap(gone["reason"] as? String, "\(gone)")
        XCTAssertTrue(reason.contains("idle timeout of 2s"), reason)
        let asked = try XCTUnwrap(try getJSON(["--computer", "alpha", "--instance-id", instanceID], home: secondHome).first)
        XCTAssertEqual(asked["state"] as? String, "Closed")
        XCTAssertEqual(asked["reason"] as? String, reason)
        let receive = try tether(["receive", "--computer", "alpha", "--instance-id", instanceID], home: secondHome)
        XCTAssertEqual(receive.status, .exited(1), receive.stderrText)
        XCTAssertTrue(receive.stderrText.contains("idle timeout"), receive.stderrText)

        // The busy one outlived its timeout; it goes once its command has ended.
        XCTAssertNotEqual(access(markerPath, F_OK), 0, "the command should still run")
        let working = try remoteSession("working", home: secondHome)
        XCTAssertEqual(working["busy"] as? Bool, true)
        try waitUntil("the command ended") { access(markerPath, F_OK) == 0 }
        try waitUntil("the session was removed after its command ended") {
            try getJSON(["--computer", "alpha", "--name", "working"], home: secondHome).isEmpty
        }
        try waitUntil("the runspaces ended") { alpha.runspacePIDs().isEmpty }
    }

    func testIdleTimeoutBelowTheHostsMinimumIsRefusedByTheHost() throws {
        try check(["new", "alpha", "--name", "s"], home: firstHome)
        let result = try tether(["disconnect", "--name", "s", "--idle-timeout", "0.5"], home: firstHome)
        XCTAssertEqual(result.status, .exited(1), result.stderrText)
        XCTAssertTrue(result.stderrText.contains("below this host's minimum of 1s"), result.stderrText)
    }

    // MARK: disconnect

    func testDisconnectingADisconnectedSessionIsANoOp() throws {
        try check(["invoke", "--computer", "alpha", "--session-name", "free", "--in-disconnected-session",
                   "--", "v=1"], home: firstHome)
        for _ in 0..<2 {
            let result = try tether(["disconnect", "--name", "free", "--json"], home: firstHome)
            XCTAssertEqual(result.status, .exited(0), result.stderrText)
            XCTAssertEqual(result.stderrText, "")
            let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdoutText.utf8)) as? [[String: Any]])
            XCTAssertEqual(rows.first?["state"] as? String, "Disconnected")
            XCTAssertEqual(rows.first?["availability"] as? String, "None")
        }
        // Another client that never held it: also a no-op.
        try check(["disconnect", "--computer", "alpha", "--name", "free"], home: secondHome)
        // But a session held by someone else is not this client's to let go.
        try check(["connect", "--name", "free"], home: firstHome)
        let refused = try tether(["disconnect", "--name", "free"], home: secondHome)
        XCTAssertEqual(refused.status, .exited(1), refused.stderrText)
        XCTAssertTrue(refused.stderrText.contains("held by"), refused.stderrText)
        XCTAssertEqual(try check(["invoke", "--name", "free", "--", "echo $v"], home: firstHome), "1\n")
    }
}

/// The client-loss scenarios again with direct SSH connections (TETHER_KEEPER=0): there a
/// killed CLI drops its SSH connection, and the subsystem, not the keeper, sees it go.
final class DisconnectedSessionTestsDirect: TwoClientTestCase {
    override class var viaKeeper: Bool { false }

    func testForceTakesOverALiveCommandAndSaysSoAndTheNewHolderGetsTheRest() throws {
        try forceTakesOverALiveCommand()
    }

    func testClientKilledMidCommandLosesNothingTheSameClientReceivesTheRest() throws {
        try clientKilledMidCommandSameClientReceives()
    }

    func testClientKilledTwiceThenAnotherClientForcesAndReceivesTheRest() throws {
        try clientKilledTwiceAnotherClientForces()
    }

    func testClientKilledWhileItsStdoutIsStuckLosesNothing() throws {
        try clientKilledWhileItsStdoutIsStuck()
    }
}
