import XCTest
import Glibc
import TetherIO
import TetherProtocol
import TetherTestSupport

/// Upgrading a host under running sessions (docs/architecture.md, "Upgrades"): sessions
/// started with the previous release — a command in flight, a disconnected session with
/// unread output, a held one with shell state — are continued, received and removed
/// with this release's binaries installed where sshd's `Subsystem` line points. The
/// previous release's registry and runspaces go on serving (they speak its protocol 2
/// with the new subsystem) until the registry ends; the next connection then starts this
/// release's registry, which adopts every runspace of either release.
final class UpgradeTests: CLITestCase {
    private var installed: String { workDirectory + "/bin/tether-subsystem" }

    override func fixtureOptions(alias: String) throws -> SSHDFixture.Options {
        let previous = try PreviousRelease.binary("tether-subsystem")
        XCTAssertEqual(mkdir(workDirectory + "/bin", 0o755), 0)
        try install(previous)
        return SSHDFixture.Options(hostAlias: alias, subsystemPath: installed)
    }

    /// As dpkg (or `install`) replaces a file: a new inode renamed over the path, so the
    /// processes running the old one keep their image.
    private func install(_ source: String) throws {
        let staging = installed + ".new"
        try Processes.run("/bin/cp", [source, staging])
        XCTAssertEqual(rename(staging, installed), 0, "rename: \(String(cString: strerror(errno)))")
    }

    private func sessionStates() throws -> [String: String] {
        Dictionary(uniqueKeysWithValues: try getJSON(["--computer", "alpha"]).map { ($0["name"] as! String, $0["state"] as! String) })
    }

    func testSessionsOfThePreviousReleaseLiveThroughTheUpgrade() throws {
        let go = workDirectory + "/go"
        // Before: the previous release on both sides.
        try checkPrevious(["new", "alpha", "--name", "held"])
        XCTAssertEqual(try checkPrevious(["invoke", "--name", "held", "--", "x=42; cd /tmp; echo set"]), "set\n")
        try checkPrevious(["invoke", "--computer", "alpha", "--session-name", "inflight", "--in-disconnected-session", "--",
                           "echo before; until [ -e \"$1\" ]; do sleep 0.1; done; echo after", go])
        try checkPrevious(["invoke", "--computer", "alpha", "--session-name", "unread", "--in-disconnected-session", "--", "seq 1 2000"])
        let registry = try XCTUnwrap(alpha.registryPID(), "no registry runs")
        let runspaces = alpha.runspacePIDs()
        XCTAssertEqual(runspaces.count, 3)
        // (This release's client starts a keeper of its own: the keeper's socket name
        // hashes the executable, so nothing below goes through the previous one's link.)

        // The upgrade.
        try install(try PackageLayout.builtProduct("tether-subsystem"))
        XCTAssertTrue(executable(of: registry).hasSuffix("(deleted)"), "the registry runs the replaced image: \(executable(of: registry))")

        // This release's subsystem and client, the previous release's registry and runspaces.
        XCTAssertEqual(try sessionStates(), ["held": "Opened", "inflight": "Disconnected", "unread": "Disconnected"])
        XCTAssertEqual(alpha.registryPID(), registry, "the previous release's registry still serves")
        XCTAssertEqual(alpha.runspacePIDs(), runspaces)
        XCTAssertEqual(try check(["invoke", "--name", "held", "--", "echo \"$x $PWD\""]), "42 /tmp\n")
        let unread = try tether(["receive", "--computer", "alpha", "--name", "unread"])
        XCTAssertEqual(unread.status, .exited(0), unread.stderrText)
        XCTAssertEqual(unread.stdoutText, (1...2000).map { "\($0)\n" }.joined())
        // The command started before the upgrade waits for a file made only now.
        try writeFile(go, "")
        let inflight = try tether(["receive", "--computer", "alpha", "--name", "inflight"])
        XCTAssertEqual(inflight.status, .exited(0), inflight.stderrText)
        XCTAssertEqual(inflight.stdoutText, "before\nafter\n")
        // A session created now is still the old registry's (a runspace of its release).
        try check(["new", "alpha", "--name", "during"])
        XCTAssertEqual(try check(["invoke", "--name", "during", "--", "echo during"]), "during\n")

        // The hand-over: the old registry ends (SIGTERM keeps every runspace); the next
        // connection starts this release's registry, which adopts them all.
        kill(registry, SIGTERM)
        try Processes.waitForExit(registry)
        // (receive connected this client to the two it read.)
        XCTAssertEqual(try sessionStates(), ["held": "Opened", "inflight": "Opened", "unread": "Opened", "during": "Opened"])
        let successor = try XCTUnwrap(alpha.registryPID())
        XCTAssertEqual(executable(of: successor), installed, "this release's registry took over")
        XCTAssertEqual(alpha.runspacePIDs().count, 4, "every runspace lived on")
        XCTAssertTrue(alpha.hostLog.contains("speaks protocol 2; serving it as it is"), tail(alpha.hostLog, 30))
        XCTAssertEqual(try check(["invoke", "--name", "held", "--", "echo \"$x\""]), "42\n")
        XCTAssertEqual(try check(["invoke", "--name", "during", "--", "echo still"]), "still\n")
        try check(["new", "alpha", "--name", "after"])
        XCTAssertEqual(try check(["invoke", "--name", "after", "--", "echo after"]), "after\n")

        // Every session removes cleanly, the old release's runspaces included.
        try check(["remove", "--name", "held,inflight,unread,during,after"])
        XCTAssertEqual(try getJSON(["--computer", "alpha"]).count, 0)
        let deadline = Reactor.now() + 20_000_000_000
        while !alpha.runspacePIDs().isEmpty && Reactor.now() < deadline { usleep(50_000) }
        XCTAssertEqual(alpha.runspacePIDs(), [], "every runspace host ended")
    }
}
