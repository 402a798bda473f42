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
            computers.append(try SSHDFixture(try fixtureOptions(alias: Self.aliases[index])))
        }
        sshConfigPath = workDirectory + "/ssh_config"
        try writeFile(sshConfigPath, computers.map { $0.configuration.sshConfig }.joined(separator: "\n"))
    }

    /// How each computer's sshd and subsystem are set up (a subclass may add subsystem
    /// arguments or sshd_config lines; `workDirectory` exists already).
    func fixtureOptions(alias: String) throws -> SSHDFixture.Options {
        SSHDFixture.Options(hostAlias: alias)
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

    /// A loopback port nothing listens on: bind one, note it, close it.
    func closedLoopbackPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return UInt16(bigEndian: address.sin_port)
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

/// A `tether` process running in the background, its output going to files.
struct BackgroundTether {
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String

    var stdoutText: String { String(decoding: Descriptors.readFile(stdoutPath) ?? [], as: UTF8.self) }
    var stderrText: String { String(decoding: Descriptors.readFile(stderrPath) ?? [], as: UTF8.self) }

    func wait(timeout: Double = 30) throws -> ExitStatus {
        try Processes.waitForChild(pid, timeout: timeout)
    }
}

extension CLITestCase {
    func startTether(_ arguments: [String], label: String) throws -> BackgroundTether {
        var environment = Spawn.currentEnvironment().filter {
            !$0.hasPrefix("TETHER_HOME=") && !$0.hasPrefix("TETHER_SSH_CONFIG=") && !$0.hasPrefix("TETHER_TRANSPORT=")
        }
        environment += ["TETHER_HOME=\(tetherHome)", "TETHER_SSH_CONFIG=\(sshConfigPath)"]
        if let transport = Environment.get("TETHER_TEST_TRANSPORT") { environment.append("TETHER_TRANSPORT=\(transport)") }
        let stdoutPath = workDirectory + "/\(label).out"
        let stderrPath = workDirectory + "/\(label).err"
        let out = open(stdoutPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let err = open(stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(out); close(err) }
        var options = Spawn.Options()
        options.fileActions = [1: out, 2: err]
        options.devNull = [0]
        options.environment = environment
        let pid = try Spawn.spawn(path: tetherPath, arguments: ["tether"] + arguments, options: options)
        return BackgroundTether(pid: pid, stdoutPath: stdoutPath, stderrPath: stderrPath)
    }

    /// Test-only wait for something another process does (product code never polls).
    func eventually(timeout: Double = 15, _ what: String, _ condition: () -> Bool) throws {
        let deadline = Deadline(secondsFromNow: timeout)
        while !condition() {
            guard !deadline.hasPassed else { throw TestSupportError("\(what) did not happen within \(timeout) s") }
            usleep(20_000)
        }
    }
}
