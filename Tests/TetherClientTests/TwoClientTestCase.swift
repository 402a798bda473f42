import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// Two client machines against one computer: `firstHome` and `secondHome` are two
/// TETHER_HOMEs (two client ids, two local session lists), as if on two laptops.
///
/// The computer's subsystem runs with TETHER_MIN_IDLE_TIMEOUT=1, so a test can ask for a
/// 2-second idle timeout (the real floor is 60 s).
class TwoClientTestCase: CLITestCase {
    var firstHome: String { tetherHome }
    var secondHome: String { workDirectory + "/second-home" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        // The base class made a plain fixture; this one needs a lowered idle-timeout floor.
        computers.forEach { $0.stop() }
        computers = [try SSHDFixture(SSHDFixture.Options(hostAlias: Self.aliases[0],
                                                         subsystemEnvironment: ["TETHER_MIN_IDLE_TIMEOUT": "1"]))]
        try writeFile(sshConfigPath, computers.map { $0.configuration.sshConfig }.joined(separator: "\n"))
    }

    /// This machine's name: what a holder is shown as (both "machines" are this one).
    var machineName: String { Environment.hostName() }

    /// The one session `home` sees on alpha named `name` (asks the host, so the session
    /// joins that client's list).
    func remoteSession(_ name: String, home: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let found = try getJSON(["--computer", "alpha", "--name", name], home: home)
        XCTAssertEqual(found.count, 1, "sessions named \(name): \(found)", file: file, line: line)
        return try XCTUnwrap(found.first, file: file, line: line)
    }

    /// Runs `tether ARGS` in the background with `home`, stdout and stderr going to files.
    func spawnTether(_ arguments: [String], home: String, label: String) throws -> TetherProcess {
        var environment = Spawn.currentEnvironment().filter {
            !$0.hasPrefix("TETHER_HOME=") && !$0.hasPrefix("TETHER_SSH_CONFIG=") && !$0.hasPrefix("TETHER_TRANSPORT=")
        }
        environment += ["TETHER_HOME=\(home)", "TETHER_SSH_CONFIG=\(sshConfigPath)"]
        if let transport = Environment.get("TETHER_TEST_TRANSPORT") { environment.append("TETHER_TRANSPORT=\(transport)") }
        let process = TetherProcess(stdoutPath: workDirectory + "/\(label).out", stderrPath: workDirectory + "/\(label).err")
        let out = open(process.stdoutPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let err = open(process.stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard out >= 0, err >= 0 else { throw SystemError.last("open \(process.stdoutPath)") }
        defer { close(out); close(err) }
        var options = Spawn.Options()
        options.fileActions = [1: out, 2: err]
        options.devNull = [0]
        options.environment = environment
        process.pid = try Spawn.spawn(path: tetherPath, arguments: ["tether"] + arguments, options: options)
        spawned.append(process)
        return process
    }

    /// Background processes still running at the end of a test are killed.
    private var spawned: [TetherProcess] = []

    override func tearDown() {
        for process in spawned where process.exitStatus == nil {
            _ = kill(process.pid, SIGKILL)
            _ = try? process.wait(timeout: 5)
        }
        spawned.removeAll()
        super.tearDown()
    }

    /// Test-only wait for something another process does (product code never polls).
    func waitUntil(_ what: String, timeout: Double = 20, _ condition: () throws -> Bool) throws {
        let deadline = Deadline(secondsFromNow: timeout)
        while try !condition() {
            guard !deadline.hasPassed else { throw TestSupportError("\(what) did not happen within \(timeout) s") }
            usleep(20_000)
        }
    }

    /// The numbers N of "line N" lines in `text`, in order.
    func lineNumbers(_ text: String) -> [Int] {
        text.split(separator: "\n").compactMap { line in
            line.hasPrefix("line ") ? Int(line.dropFirst(5)) : nil
        }
    }

    /// `sha256sum FILE`'s hex digest.
    func sha256(ofFile path: String) throws -> String {
        let result = try Processes.check("sha256sum", [path], timeout: 60)
        return String(result.stdoutText.prefix { $0 != " " })
    }
}

/// A `tether` process started by `spawnTether`, its output in two files.
final class TetherProcess {
    var pid: pid_t = 0
    let stdoutPath: String
    let stderrPath: String
    private(set) var exitStatus: ExitStatus?

    init(stdoutPath: String, stderrPath: String) {
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
    }

    var stdoutText: String { String(decoding: Descriptors.readFile(stdoutPath) ?? [], as: UTF8.self) }
    var stderrText: String { String(decoding: Descriptors.readFile(stderrPath) ?? [], as: UTF8.self) }

    @discardableResult
    func wait(timeout: Double = 60) throws -> ExitStatus {
        if let exitStatus { return exitStatus }
        let status = try Processes.waitForChild(pid, timeout: timeout)
        exitStatus = status
        return status
    }

    /// `kill -9`, and reap it.
    func kill9() throws {
        try Processes.kill9(pid)
        try wait(timeout: 10)
    }
}
