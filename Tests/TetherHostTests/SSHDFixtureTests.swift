import XCTest
import Glibc
import TetherTestSupport

/// The fixture itself: a real sshd that real OpenSSH clients reach, and a clean stop.
final class SSHDFixtureTests: XCTestCase {
    func testOpenSSHClientReachesTheFixtureThroughASubsystem() throws {
        let host = try SSHDFixture()
        defer { host.stop() }
        let echoed = try Processes.run("ssh", host.sshArguments + ["-s", host.destination, "echo"],
                                       stdin: Array("ping through sshd\n".utf8), timeout: 20)
        XCTAssertEqual(echoed.status, .exited(0), echoed.stderrText + "\n" + host.sshdLog)
        XCTAssertEqual(echoed.stdoutText, "ping through sshd\n")
    }

    func testSSHConfigAliasWorks() throws {
        let host = try SSHDFixture(.init(hostAlias: "web1"))
        defer { host.stop() }
        let result = try Processes.run("ssh", ["-F", host.sshConfigPath, "web1", "echo", "alias-ok"], timeout: 20)
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        XCTAssertEqual(result.stdoutText, "alias-ok\n")
    }

    func testTwoFixturesAreTwoComputersAndStopCleansUp() throws {
        let a = try SSHDFixture()
        let b = try SSHDFixture()
        XCTAssertNotEqual(a.port, b.port)
        XCTAssertNotEqual(a.runtimeDirectory, b.runtimeDirectory)
        let sshdA = a.sshdPID
        a.stop()
        XCTAssertFalse(ProcessTable.isAlive(sshdA))
        XCTAssertFalse(FileManager.default.fileExists(atPath: a.directory))
        XCTAssertTrue(ProcessTable.isAlive(b.sshdPID))
        b.stop()
    }
}
