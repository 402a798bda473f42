import XCTest
import Glibc
import TetherIO
import TetherTestSupport

/// A registry of this release whose binary is replaced (an upgrade installs a new file
/// at its path) re-executes the new file once no subsystem is connected, keeping its pid,
/// pid lock and listening sockets; the new image re-adopts every session, a command in
/// flight included (RegistryHandOver.swift; docs/architecture.md, "Upgrades").
final class RegistryHandOverTests: CLITestCase {
    private var installed: String { workDirectory + "/bin/tether-subsystem" }

    override func fixtureOptions(alias: String) throws -> SSHDFixture.Options {
        XCTAssertEqual(mkdir(workDirectory + "/bin", 0o755), 0)
        try install()
        return SSHDFixture.Options(hostAlias: alias, subsystemPath: installed)
    }

    /// A fresh copy of this build renamed over the installed path: a new inode, as dpkg
    /// and install(1) leave it.
    private func install() throws {
        let staging = installed + ".new"
        try Processes.run("/bin/cp", [try PackageLayout.builtProduct("tether-subsystem"), staging])
        XCTAssertEqual(rename(staging, installed), 0)
    }

    /// Each command connects on its own and leaves (no keeper link keeps a subsystem, and
    /// so the registry, in use).
    @discardableResult
    private func direct(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try tether(arguments, environment: ["TETHER_KEEPER": "0"])
        XCTAssertEqual(result.status, .exited(0), "tether \(arguments.joined(separator: " ")): \(result.stderrText)", file: file, line: line)
        return result.stdoutText
    }

    func testARegistryHandsOverToTheNewlyInstalledBinaryKeepingEverySession() throws {
        let go = workDirectory + "/go"
        try direct(["new", "alpha", "--name", "kept"])
        try direct(["invoke", "--name", "kept", "--", "x=1"])
        try direct(["invoke", "--computer", "alpha", "--session-name", "running", "--in-disconnected-session", "--",
                    "echo before; until [ -e \"$1\" ]; do sleep 0.1; done; echo after", go])
        let registry = try XCTUnwrap(alpha.registryPID())
        let runspaces = alpha.runspacePIDs()
        XCTAssertEqual(executable(of: registry), installed)

        try install()
        XCTAssertTrue(executable(of: registry).hasSuffix("(deleted)"))
        // The next connection is served by the running image; when it leaves, nothing
        // depends on that image any more and the registry becomes the new file.
        XCTAssertTrue(try direct(["get", "--computer", "alpha"]).contains("running"))
        let deadline = Reactor.now() + 20_000_000_000
        while !alpha.hostLog.contains("took over from the previous image") && Reactor.now() < deadline { usleep(50_000) }
        XCTAssertTrue(alpha.hostLog.contains("was replaced (an upgrade): handing over to it"), tail(alpha.hostLog, 20))
        XCTAssertTrue(alpha.hostLog.contains("took over from the previous image"), tail(alpha.hostLog, 20))
        XCTAssertEqual(alpha.registryPID(), registry, "same process, same pid lock")
        XCTAssertEqual(executable(of: registry), installed, "running the new file")
        XCTAssertEqual(alpha.runspacePIDs(), runspaces)

        XCTAssertEqual(try direct(["invoke", "--name", "kept", "--", "echo \"$x\""]), "1\n")
        try writeFile(go, "")
        XCTAssertEqual(try direct(["receive", "--computer", "alpha", "--name", "running"]), "before\nafter\n")
        try direct(["remove", "--name", "kept,running"])
        XCTAssertEqual(try direct(["get", "--computer", "alpha", "--json"]).filter { !$0.isWhitespace }, "[]")
        XCTAssertEqual(alpha.registryPIDs(), [registry], "never a second registry")
    }
}
