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

    /// Whether `tether` processes go through the client keeper (the CLI's default) or
    /// connect directly (TETHER_KEEPER=0). A killed CLI is a different event for each: a
    /// dropped keeper link versus a dropped SSH connection.
    class var viaKeeper: Bool { true }

    override func setUpWithError() throws {
        // Inherited by every `tether` process the test starts.
        if Self.viaKeeper { unsetenv("TETHER_KEEPER") } else { setenv("TETHER_KEEPER", "0", 1) }
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
    func spawnTether(_ arguments: [String], home: String, label: String, stdoutFD: Int32? = nil,
                     stdinFD: Int32? = nil, environment extra: [String] = []) throws -> TetherProcess {
        var environment = Spawn.currentEnvironment().filter {
            !$0.hasPrefix("TETHER_HOME=") && !$0.hasPrefix("TETHER_SSH_CONFIG=") && !$0.hasPrefix("TETHER_TRANSPORT=")
        }
        environment += ["TETHER_HOME=\(home)", "TETHER_SSH_CONFIG=\(sshConfigPath)"]
        if let transport = Environment.get("TETHER_TEST_TRANSPORT") { environment.append("TETHER_TRANSPORT=\(transport)") }
        environment += extra
        let process = TetherProcess(stdoutPath: workDirectory + "/\(label).out", stderrPath: workDirectory + "/\(label).err")
        let out = open(process.stdoutPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let err = open(process.stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard out >= 0, err >= 0 else { throw SystemError.last("open \(process.stdoutPath)") }
        defer { close(out); close(err) }
        var options = Spawn.Options()
        options.fileActions = [1: stdoutFD ?? out, 2: err]
        if let stdinFD { options.fileActions[0] = stdinFD } else { options.devNull = [0] }
        options.environment = environment
        process.pid = try Spawn.spawn(path: tetherPath, arguments: ["tether"] + arguments, options: options)
        spawned.append(process)
        return process
    }

    /// Runs `tether ARGS` in the background with its stdout into a pipe of `pipeSize`
    /// bytes that nobody reads until `TetherProcess.readStuckOutput()`: a reader that
    /// stopped (a stopped pager, a terminal after Ctrl-S), so the CLI blocks writing —
    /// the CLI itself: the keeper's writing into a CLI's stdout is off here
    /// (`TETHER_KEEPER_DIRECT=0`; KeeperDirectOutputTests stall the keeper's writes).
    func spawnTetherWithStuckStdout(_ arguments: [String], home: String, label: String, pipeSize: Int32 = 4096) throws -> TetherProcess {
        let pipe = try Descriptors.pipe()
        defer { close(pipe.write) }
        // F_SETPIPE_SZ (1031): the pipe holds exactly one page, then writers block.
        guard fcntl(pipe.write, 1031, pipeSize) >= 0 else { throw SystemError.last("F_SETPIPE_SZ") }
        let process = try spawnTether(arguments, home: home, label: label, stdoutFD: pipe.write,
                                      environment: ["TETHER_KEEPER_DIRECT=0"])
        process.stdoutPipe = pipe.read
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
        unsetenv("TETHER_KEEPER")
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
    /// The read end of stdout when started by `spawnTetherWithStuckStdout`.
    var stdoutPipe: Int32?

    deinit { if let stdoutPipe { close(stdoutPipe) } }

    /// Whether one of its threads is blocked in write(2) on stdout (x86_64: syscall 1).
    var isBlockedWritingStdout: Bool {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.contains { task in
            let text = String(decoding: Descriptors.readFile("/proc/\(pid)/task/\(task)/syscall") ?? [], as: UTF8.self)
            return text.hasPrefix("1 0x1 ")
        }
    }

    /// Everything in the stdout pipe now (the process must be gone or stuck).
    func readStuckOutput() -> String {
        guard let fd = stdoutPipe else { return stdoutText }
        Descriptors.setNonBlocking(fd)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

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
