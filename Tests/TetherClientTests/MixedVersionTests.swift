import XCTest
import Glibc
import TetherIO
import TetherProtocol
import TetherTestSupport

/// A client one release older than the host, and a host one release older than the
/// client: the hello settles on the previous release's protocol (2) and everything that
/// release could do works (docs/protocol.md, "Versions"). The previous release is the
/// newest `v*` tag, built by scripts/previous-release.
final class MixedVersionTests: CLITestCase {
    func testAClientOfThePreviousReleaseWorksWithThisHost() throws {
        try checkPrevious(["new", "alpha", "--name", "elder"])
        XCTAssertEqual(try checkPrevious(["invoke", "--name", "elder", "--", "x=7; cd /tmp; echo \"hello $1\"", "0.1"]), "hello 0.1\n")
        XCTAssertEqual(try checkPrevious(["invoke", "--name", "elder", "--", "echo \"$x $PWD\""]), "7 /tmp\n")
        // Stdin, and output left for a later receive.
        XCTAssertEqual(try previousTether(["invoke", "--name", "elder", "--", "wc -c"]).status, .exited(0))
        try checkPrevious(["invoke", "--computer", "alpha", "--session-name", "later", "--in-disconnected-session",
                           "--", "seq 1 500"])
        let received = try previousTether(["receive", "--computer", "alpha", "--name", "later"])
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        XCTAssertEqual(received.stdoutText, (1...500).map { "\($0)\n" }.joined())
        XCTAssertTrue(try checkPrevious(["get", "--computer", "alpha"]).contains("elder"))
        try checkPrevious(["remove", "--name", "elder,later"])
        let left = try JSONSerialization.jsonObject(with: Data(try checkPrevious(["get", "--computer", "alpha", "--json"]).utf8))
        XCTAssertEqual((left as? [Any])?.count, 0)
        // This host spoke protocol 2 with it, and said so in its log.
        XCTAssertTrue(alpha.hostLog.contains("tether/0.1, protocol 2"), tail(alpha.hostLog, 20))
    }

    func testThisClientWorksWithAHostOfThePreviousRelease() throws {
        let elder = try SSHDFixture(SSHDFixture.Options(hostAlias: "elder", subsystemPath: try PreviousRelease.binary("tether-subsystem")))
        defer { elder.stop() }
        try writeFile(sshConfigPath, alpha.configuration.sshConfig + "\n" + elder.configuration.sshConfig)

        try check(["new", "elder", "--name", "s"])
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "x=7; echo \"hello $1\"", "0.2"]), "hello 0.2\n")
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "echo \"$x\""]), "7\n")
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "wc -c"], stdin: Array("12345".utf8)).trimmingCharacters(in: .whitespaces), "5\n")
        try check(["invoke", "--computer", "elder", "--session-name", "later", "--in-disconnected-session", "--", "seq 1 500"])
        let received = try tether(["receive", "--computer", "elder", "--name", "later"])
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        XCTAssertEqual(received.stdoutText, (1...500).map { "\($0)\n" }.joined())
        // Jobs were in 0.1 too.
        try check(["invoke", "--name", "s", "--as-job", "--job-name", "j", "--", "echo from-a-job"])
        XCTAssertEqual(try check(["job", "receive", "--name", "s", "--job-name", "j", "--wait"]), "from-a-job\n")

        // -v says which release answered and which protocol the hello settled on.
        let listed = try tether(["get", "--computer", "elder", "-v"])
        XCTAssertEqual(listed.status, .exited(0), listed.stderrText)
        XCTAssertTrue(listed.stderrText.contains("elder: host: tether 0.1, protocol 2"), listed.stderrText)
        XCTAssertTrue(listed.stderrText.contains("this client: tether \(tetherReleaseVersion), protocol \(ProtocolRange.ours)"), listed.stderrText)
        let current = try tether(["get", "--computer", "alpha", "-v"])
        XCTAssertTrue(current.stderrText.contains("alpha: host: tether-subsystem \(tetherReleaseVersion), protocol \(tetherProtocolVersion)"), current.stderrText)

        try check(["remove", "--name", "s,later"])
        XCTAssertEqual(try getJSON(["--computer", "elder"]).count, 0)
    }

    /// A client upgraded while its keeper runs: both releases' CLIs share one home, each
    /// through a keeper of its own release (the keeper's socket name hashes the
    /// executable), each speaking its own protocol with this host.
    func testBothReleasesOfTheClientShareAHome() throws {
        try checkPrevious(["new", "alpha", "--name", "k"])
        XCTAssertEqual(try checkPrevious(["invoke", "--name", "k", "--", "x=1; echo old"]), "old\n")
        let current = try tether(["invoke", "--name", "k", "-v", "--", "echo \"new $x\""])
        XCTAssertEqual(current.status, .exited(0), current.stderrText)
        XCTAssertEqual(current.stdoutText, "new 1\n")
        XCTAssertTrue(current.stderrText.contains("keeper: dialled a new link"), current.stderrText)
        XCTAssertTrue(current.stderrText.contains("alpha: host: tether-subsystem \(tetherReleaseVersion), protocol \(tetherProtocolVersion)"), current.stderrText)
        XCTAssertEqual(try checkPrevious(["invoke", "--name", "k", "--", "echo \"old again $x\""]), "old again 1\n")
        try check(["remove", "--name", "k"])
        try checkPrevious(["keeper", "--stop"])
    }

    func testBothBinariesPrintTheirReleaseAndProtocols() throws {
        let line = "\(tetherReleaseVersion) (protocol \(tetherProtocolVersion), speaks \(ProtocolRange.ours)"
        XCTAssertTrue(try check(["--version"]).hasPrefix("tether " + line))
        let subsystem = try Processes.run(try PackageLayout.builtProduct("tether-subsystem"), ["--version"])
        XCTAssertTrue(subsystem.stdoutText.hasPrefix("tether-subsystem " + line), subsystem.stdoutText)
    }
}
