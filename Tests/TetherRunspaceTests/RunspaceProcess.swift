import Foundation
import Glibc
import CTetherPosix
import TetherIO
import TetherProtocol
import XCTest

/// A real runspace host (`tether-subsystem runspace`) started the way the registry starts
/// it — detached, stdio on /dev/null, a ready pipe on fd 3 — in private temp directories.
final class RunspaceProcess {
    let instanceID: String
    let directory: String
    let paths: HostPaths
    let pid: pid_t
    private var reaped: ExitStatus?

    var socketPath: String { paths.runspaceSocket(instanceID) }
    var workDirectory: String { paths.runspaceWorkDirectory(instanceID) }

    /// What the ready pipe said, and the process (reaped already if it failed).
    struct Launch {
        let readyLine: String
        let pid: pid_t
        let exitStatus: ExitStatus?
    }

    /// Starts a runspace and waits for its ready line; throws unless it is "ok".
    init(instanceID: String = UUID().uuidString.lowercased(), arguments: [String] = []) throws {
        self.instanceID = instanceID
        directory = try RunspaceProcess.makeTemporaryDirectory()
        paths = HostPaths(runtimeDirectory: directory + "/run", stateDirectory: directory + "/state")
        let launch = try RunspaceProcess.launch(paths: paths, arguments: ["--instance-id", instanceID] + arguments)
        pid = launch.pid
        guard launch.readyLine == "ok\n" else {
            RunspaceProcess.removeTree(directory)
            throw RunspaceTestError("runspace did not start: \(launch.readyLine.debugDescription) (\(launch.exitStatus.map(String.init(describing:)) ?? "running"))")
        }
    }

    deinit { stop() }

    static func binary() throws -> String {
        var candidates: [String] = []
        let testBinary = Spawn.currentExecutable()
        if let slash = testBinary.lastIndex(of: "/") {
            candidates.append(String(testBinary[..<slash]) + "/tether-subsystem")
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        candidates.append(root + "/.build/debug/tether-subsystem")
        for candidate in candidates where access(candidate, X_OK) == 0 { return candidate }
        throw RunspaceTestError("tether-subsystem not built (looked at \(candidates)); run swift build --product tether-subsystem")
    }

    static func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/tether-rs-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SystemError.last("mkdtemp") }
        return String(cString: made)
    }

    /// Spawns `tether-subsystem runspace <arguments>` with a ready pipe on fd 3 and reads
    /// its one line (waiting at most `timeout`). A failed start is reaped.
    static func launch(paths: HostPaths, arguments: [String], timeout: Double = 20) throws -> Launch {
        var fds: [Int32] = [0, 0]
        guard tether_pipe2(&fds, Int32(O_CLOEXEC)) == 0 else { throw SystemError.last("pipe2") }
        var options = Spawn.Options()
        options.fileActions = [3: fds[1]]
        options.devNull = [0, 1, 2]
        options.newSession = true
        let argv = [try binary(), "runspace", "--runtime-dir", paths.runtimeDirectory,
                    "--state-dir", paths.stateDirectory, "--ready-fd", "3"] + arguments
        let pid: pid_t
        do {
            pid = try Spawn.spawn(path: argv[0], arguments: argv, options: options)
        } catch {
            close(fds[0]); close(fds[1])
            throw error
        }
        close(fds[1])
        defer { close(fds[0]) }
        var line: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while !line.contains(0x0a) {
            var entry = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            let remaining = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
            if poll(&entry, 1, remaining) == 0 {
                kill(pid, SIGKILL)
                _ = waitForExit(pid, timeout: 5)
                throw RunspaceTestError("no ready line within \(timeout)s")
            }
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = read(fds[0], &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            line += buffer[0..<n]
        }
        let text = String(decoding: line, as: UTF8.self)
        var status: ExitStatus?
        if text != "ok\n" { status = waitForExit(pid, timeout: 10) }
        return Launch(readyLine: text, pid: pid, exitStatus: status)
    }

    /// Waits (through a pidfd, no sleeping loop) for our child `pid` and reaps it.
    @discardableResult
    static func waitForExit(_ pid: pid_t, timeout: Double) -> ExitStatus? {
        let pidfd = tether_pidfd_open(pid)
        if pidfd >= 0 {
            var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(timeout * 1000))
            close(pidfd)
            if ready == 0 { return nil }
        }
        var status: Int32 = 0
        let result = waitpid(pid, &status, pidfd >= 0 ? WNOHANG : 0)
        return result == pid ? ExitStatus(waitStatus: status) : nil
    }

    /// Waits for the runspace to exit by itself.
    func waitForExit(timeout: Double) -> ExitStatus? {
        if let reaped { return reaped }
        reaped = RunspaceProcess.waitForExit(pid, timeout: timeout)
        return reaped
    }

    /// The bash the runspace drives (its only child).
    func bashPID() throws -> pid_t {
        let text = try String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)
        guard let first = text.split(separator: " ").first, let child = pid_t(first) else {
            throw RunspaceTestError("the runspace \(pid) has no child process")
        }
        return child
    }

    func connect(role: PeerRole = .subsystem, clientID: String = "client-a") throws -> RunspaceClient {
        try RunspaceClient(path: socketPath, role: role, clientID: clientID)
    }

    /// A subsystem connection with channel 1 attached.
    func attachedClient(clientID: String = "client-a", channel: UInt32 = 1, receive: Bool = false) throws -> RunspaceClient {
        let client = try connect(clientID: clientID)
        _ = try client.attach(channel: channel, instanceID: instanceID, receive: receive)
        return client
    }

    /// Ends the runspace (SIGTERM: it terminates bash and cleans up), SIGKILL if it lingers,
    /// and removes the temp directories.
    func stop() {
        if reaped == nil {
            let bash = try? bashPID()
            kill(pid, SIGTERM)
            reaped = RunspaceProcess.waitForExit(pid, timeout: 10)
            if reaped == nil {
                kill(pid, SIGKILL)
                reaped = RunspaceProcess.waitForExit(pid, timeout: 10)
            }
            if let bash { kill(-bash, SIGKILL) }  // in case the runspace could not
        }
        RunspaceProcess.removeTree(directory)
    }

    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}

struct RunspaceTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
