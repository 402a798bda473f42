import XCTest
import Foundation
import TetherTestSupport
import TetherProtocol

/// Connection-level failures: one clear line naming the computer, exit 255 (like ssh),
/// and never a hang.
final class ConnectionFailureTests: CLITestCase {
    func testUnreachablePortFailsFastWith255() throws {
        let closedPort = try closedLoopbackPort()
        let started = Date()
        let result = try tether(["get", "--computer", "alpha", "--port", String(closedPort)], timeout: 20)
        XCTAssertEqual(result.status, .exited(255), result.stderrText)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        XCTAssertTrue(result.stderrText.hasPrefix("tether: alpha"), result.stderrText)
        XCTAssertTrue(result.stderrText.lowercased().contains("refused"), result.stderrText)
        XCTAssertEqual(result.stderrText.split(separator: "\n").count, 1, result.stderrText)
    }

    func testKnownHostsMismatchIsRefusedWith255() throws {
        // A known_hosts that lists another key for the fixture's address.
        let keyPath = workDirectory + "/impostor"
        try Processes.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyPath])
        let impostor = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: keyPath + ".pub")), as: UTF8.self)
        let knownHosts = workDirectory + "/known_hosts_wrong"
        try writeFile(knownHosts, alpha.configuration.knownHosts(publicKeys: [impostor]))
        let config = alpha.configuration.sshConfig.replacingOccurrences(of: alpha.knownHostsPath, with: knownHosts)
        try writeFile(sshConfigPath, config)

        let result = try tether(["get", "--computer", "alpha"], timeout: 30)
        XCTAssertEqual(result.status, .exited(255), result.stderrText)
        XCTAssertTrue(result.stderrText.hasPrefix("tether: alpha"), result.stderrText)
        XCTAssertTrue(result.stderrText.lowercased().contains("host key") || result.stderrText.lowercased().contains("host identification"),
                      result.stderrText)
        // Nothing was started on the host.
        XCTAssertTrue(alpha.subsystemPIDs().isEmpty)
    }

    func testMissingSubsystemIs255() throws {
        let result = try tether(["get", "--computer", "alpha", "--subsystem", "no-such-subsystem"], timeout: 30)
        XCTAssertEqual(result.status, .exited(255), result.stderrText)
        XCTAssertTrue(result.stderrText.hasPrefix("tether: alpha: "), result.stderrText)
        XCTAssertTrue(result.stderrText.contains("subsystem"), result.stderrText)
    }

    func testUnknownSessionIsExit1WithClearMessage() throws {
        let result = try tether(["invoke", "--name", "nothing-here", "--", "true"])
        XCTAssertEqual(result.status, .exited(1), result.stderrText)
        XCTAssertTrue(result.stderrText.contains("no session in this client's list matches --name nothing-here"), result.stderrText)
    }

    func testBadOptionsAreUsageErrors() throws {
        let result = try tether(["new", "alpha", "--idle-timeout", "5"])
        XCTAssertNotEqual(result.status, .exited(0))
        // The host sets the floor (60 s unless its admin lowered it) and names it.
        XCTAssertTrue(result.stderrText.contains("idle timeout of 5s is below this host's minimum of 60s"), result.stderrText)
        let noScript = try tether(["invoke", "--name", "x"])
        XCTAssertNotEqual(noScript.status, .exited(0))
        XCTAssertTrue(noScript.stderrText.contains("give the command to run after --"), noScript.stderrText)
    }

    func testProtocolVersionMismatchIs255WithBothVersions() throws {
        // A "subsystem" that answers with a hello of version 99 (0x63).
        let script = workDirectory + "/future-subsystem"
        try writeFile(script, """
            #!/bin/bash
            json='{"role":"host","software":"tether/9"}'
            len=$((5 + 8 + 2 + ${#json}))
            printf "\\x00\\x00\\x00\\x$(printf %02x $len)\\x01\\x00\\x00\\x00\\x00TETHER\\r\\n\\x00\\x63%s" "$json"
            cat >/dev/null

            """)
        XCTAssertEqual(chmod(script, 0o755), 0)
        let future = try SSHDFixture(SSHDFixture.Options(hostAlias: "future", subsystemPath: script))
        defer { future.stop() }
        try writeFile(sshConfigPath, alpha.configuration.sshConfig + "\n" + future.configuration.sshConfig)

        let result = try tether(["get", "--computer", "future"], timeout: 30)
        XCTAssertEqual(result.status, .exited(255), result.stderrText)
        XCTAssertTrue(result.stderrText.hasPrefix("tether: future: protocol version mismatch"), result.stderrText)
        XCTAssertTrue(result.stderrText.contains("protocol 99") && result.stderrText.contains("speaks \(ProtocolRange.ours)"), result.stderrText)
    }
}
