import Glibc
import CTetherPosix
import TetherIO

/// What a finished command left behind.
public struct CommandResult: Sendable {
    public let status: ExitStatus
    public let stdout: [UInt8]
    public let stderr: [UInt8]
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Running and ending real processes from tests: capture with a timeout, `kill -9`, and
/// wait for any pid's exit (through a pidfd, so nothing sleeps in a loop).
public enum Processes {
    /// Runs `executable` (a path, or a name looked up in PATH) and captures its output.
    /// Kills it and throws if it has not finished within `timeout` seconds.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], stdin: [UInt8] = [],
                           environment: [String]? = nil, timeout: Double = 30) throws -> CommandResult {
        ignoreSIGPIPE()
        let path = try resolve(executable)
        let input = try Descriptors.pipe()
        let output = try Descriptors.pipe()
        let errors = try Descriptors.pipe()
        var options = Spawn.Options()
        options.fileActions = [0: input.read, 1: output.write, 2: errors.write]
        options.environment = environment
        let pid: pid_t
        do {
            pid = try Spawn.spawn(path: path, arguments: [executable] + arguments, options: options)
        } catch {
            [input.read, input.write, output.read, output.write, errors.read, errors.write].forEach { close($0) }
            throw error
        }
        close(input.read); close(output.write); close(errors.write)
        defer { close(output.read); close(errors.read) }

        let deadline = Deadline(secondsFromNow: timeout)
        let commandLine = ([executable] + arguments).joined(separator: " ")
        Descriptors.setNonBlocking(input.write)
        do {
            if !stdin.isEmpty { try Descriptors.writeAll(input.write, stdin, until: deadline, what: "stdin of \(commandLine)") }
        } catch {
            // The command may exit without reading its input; its output still tells why.
        }
        close(input.write)

        var out: [UInt8] = [], err: [UInt8] = []
        var open: [Int32] = [output.read, errors.read]
        while !open.isEmpty {
            var entries = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = poll(&entries, nfds_t(entries.count), deadline.remainingMilliseconds)
            if n < 0 && errno == EINTR { continue }
            if n == 0 {
                _ = kill(pid, SIGKILL)
                _ = try? waitForChild(pid, timeout: 5)
                throw TestSupportError("`\(commandLine)` did not finish within \(timeout) s (killed it); output so far: \(String(decoding: out + err, as: UTF8.self))")
            }
            for entry in entries where entry.revents != 0 {
                var buffer = [UInt8](repeating: 0, count: 65536)
                let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, 65536) }
                if count > 0 {
                    if entry.fd == output.read { out += buffer[0..<count] } else { err += buffer[0..<count] }
                } else if count == 0 || errno != EINTR {
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        let status = try waitForChild(pid, timeout: max(1, deadline.remainingSeconds))
        return CommandResult(status: status, stdout: out, stderr: err)
    }

    /// Runs a command that must succeed; throws with its stderr otherwise.
    @discardableResult
    public static func check(_ executable: String, _ arguments: [String], timeout: Double = 30) throws -> CommandResult {
        let result = try run(executable, arguments, timeout: timeout)
        guard result.status == .exited(0) else {
            throw TestSupportError("`\(([executable] + arguments).joined(separator: " "))` \(result.status): \(result.stderrText)\(result.stdoutText)")
        }
        return result
    }

    /// `kill -9 pid`. Throws if there is no such process (the test's premise is wrong).
    public static func kill9(_ pid: pid_t) throws {
        guard kill(pid, SIGKILL) == 0 else { throw SystemError.last("kill -9 \(pid)") }
    }

    /// Waits until `pid` (any process, not only our child) has exited. Throws on timeout.
    public static func waitForExit(_ pid: pid_t, timeout: Double = 10) throws {
        let pidfd = tether_pidfd_open(pid)
        guard pidfd >= 0 else {
            if errno == ESRCH { return }  // already gone (and reaped)
            throw SystemError.last("pidfd_open \(pid)")
        }
        defer { close(pidfd) }
        // A pidfd turns readable when the process exits, reaped or not.
        guard Descriptors.waitReadable(pidfd, until: Deadline(secondsFromNow: timeout)) else {
            let what = ProcessTable.entry(pid)?.arguments.joined(separator: " ") ?? "?"
            throw TestSupportError("process \(pid) (\(what)) was still running after \(timeout) s")
        }
    }

    /// Waits for our own child `pid` to exit and reaps it.
    public static func waitForChild(_ pid: pid_t, timeout: Double = 10) throws -> ExitStatus {
        try waitForExit(pid, timeout: timeout)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno == EINTR { continue }
            throw SystemError.last("waitpid \(pid)")
        }
        return ExitStatus(waitStatus: status)
    }

    /// Reaps our child if it has exited; nil while it runs.
    public static func reapIfExited(_ pid: pid_t) -> ExitStatus? {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid ? ExitStatus(waitStatus: status) : nil
    }

    /// SIGKILLs every pid and waits for each to be gone.
    public static func killAll(_ pids: [pid_t], timeout: Double = 10) {
        for pid in pids { _ = kill(pid, SIGKILL) }
        for pid in pids { try? waitForExit(pid, timeout: timeout) }
    }

    /// The absolute path of a command name, searched in PATH (or the path itself).
    public static func resolve(_ executable: String) throws -> String {
        if executable.contains("/") { return executable }
        let path = Environment.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        let directories: [String] = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
        for dir in directories {
            let candidate = "\(dir)/\(executable)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw TestSupportError("`\(executable)` not found in PATH (\(path)); run scripts/setup")
    }

    /// Writing to a pipe whose reader died must be an error the test sees, not a signal
    /// that kills the whole test process.
    public static func ignoreSIGPIPE() {
        Signals.ignore(SIGPIPE)
    }
}
