import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// Base of the CLI end-to-end tests: real sshd fixtures (one per "computer"), the built
/// `tether` binary run as separate processes, a fresh TETHER_HOME per test (one client),
/// and one ssh config naming every fixture, passed as TETHER_SSH_CONFIG.
///
/// The transport is the default (libssh2) unless TETHER_TEST_TRANSPORT=openssh.
class CLITestCase: XCTestCase {
    var computers: [SSHDFixture] = []
    var workDirectory = ""
    var tetherHome = ""
    var sshConfigPath = ""
    var tetherPath = ""

    /// How many computers a test of this class gets (aliases "alpha", "beta", …).
    var computerCount: Int { 1 }
    static let aliases = ["alpha", "beta", "gamma"]

    var alpha: SSHDFixture { computers[0] }
    var beta: SSHDFixture { computers[1] }

    override func setUpWithError() throws {
        try super.setUpWithError()
        tetherPath = try PackageLayout.builtProduct("tether")
        workDirectory = try Self.makeTemporaryDirectory()
        tetherHome = workDirectory + "/home"
        for index in 0..<computerCount {
            computers.append(try SSHDFixture(SSHDFixture.Options(hostAlias: Self.aliases[index])))
        }
        sshConfigPath = workDirectory + "/ssh_config"
        try writeFile(sshConfigPath, computers.map { $0.configuration.sshConfig }.joined(separator: "\n"))
    }

    override func tearDown() {
        if let run = testRun, !run.hasSucceeded {
            for computer in computers {
                print("---- \(computer.hostAlias) host log, last lines:\n\(tail(computer.hostLog, 30))")
            }
        }
        computers.forEach { $0.stop() }
        computers.removeAll()
        if Environment.get("TETHER_KEEP_FIXTURES") != "1" {
            _ = try? Processes.run("/bin/rm", ["-rf", workDirectory])
        }
        super.tearDown()
    }

    /// Runs `tether ARGS` as its own process with this test's client home and ssh config.
    @discardableResult
    func tether(_ arguments: [String], stdin: [UInt8] = [], home: String? = nil,
                environment extra: [String: String] = [:], timeout: Double = 60) throws -> CommandResult {
        var environment = Spawn.currentEnvironment().filter {
            !$0.hasPrefix("TETHER_HOME=") && !$0.hasPrefix("TETHER_SSH_CONFIG=") && !$0.hasPrefix("TETHER_TRANSPORT=")
        }
        environment.append("TETHER_HOME=\(home ?? tetherHome)")
        environment.append("TETHER_SSH_CONFIG=\(sshConfigPath)")
        if let transport = Environment.get("TETHER_TEST_TRANSPORT") {
            environment.append("TETHER_TRANSPORT=\(transport)")
        }
        for (key, value) in extra { environment.append("\(key)=\(value)") }
        return try Processes.run(tetherPath, arguments, stdin: stdin, environment: environment, timeout: timeout)
    }

    /// Runs `tether ARGS` and requires exit 0; returns stdout.
    @discardableResult
    func check(_ arguments: [String], stdin: [UInt8] = [], home: String? = nil,
               file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try tether(arguments, stdin: stdin, home: home)
        XCTAssertEqual(result.status, .exited(0),
                       "tether \(arguments.joined(separator: " ")): stderr: \(result.stderrText) stdout: \(result.stdoutText)",
                       file: file, line: line)
        return result.stdoutText
    }

    /// `tether get --json` (plus `extra` arguments), parsed.
    func getJSON(_ extra: [String] = [], home: String? = nil) throws -> [[String: Any]] {
        let text = try check(["get", "--json"] + extra, home: home)
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap(parsed as? [[String: Any]], "get --json printed \(text)")
    }

    func writeFile(_ path: String, _ text: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw TestSupportError("cannot write \(path)")
        }
    }

    static func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/tether-cli-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SystemError.last("mkdtemp") }
        return String(cString: made)
    }

    func tail(_ text: String, _ lines: Int) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}
