import Glibc
import TetherIO

/// A throwaway Unix user with a known password, for password and keyboard-interactive
/// logins against a fixture's sshd (needs root: useradd, chpasswd). Its GECOS field names
/// the creating pid, so users left by a killed run are removed by the next. No home
/// directory; `remove()` (also deinit) deletes it.
///
/// A fixture's runtime and state directories belong to the user running the tests, so
/// this user gets its own beside them: `subsystemWrapper` is a `tether-subsystem` for
/// `SSHDFixture.Options.subsystemPath` that, run as this user, uses
/// `<runtime>-<name>` and `<state>-<name>` (`prepare(for:)` makes them).
public final class LoginUser {
    public let name: String
    public let password: String
    public let uid: uid_t
    public let gid: gid_t
    /// A 0755 directory under /tmp holding what this user runs of ours.
    public let binaries: String
    private var removed = false

    private static let prefix = "tether-login-"

    public init() throws {
        Self.sweepAbandoned()
        name = Self.prefix + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        password = "pw-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let made = try Processes.run("useradd", ["-M", "-s", "/bin/sh", "-c", "tether tests (pid \(getpid()))", name])
        guard made.status == .exited(0) else {
            throw TestSupportError("useradd \(name) failed (\(made.status)): \(made.stderrText)")
        }
        guard let entry = getpwnam(name) else { throw TestSupportError("useradd \(name): getpwnam finds no such user") }
        uid = entry.pointee.pw_uid
        gid = entry.pointee.pw_gid
        var template = Array("/tmp/tether-login-bin-XXXXXX".utf8CString)
        guard let directory = mkdtemp(&template) else { throw SystemError.last("mkdtemp") }
        binaries = String(cString: directory)
        do {
            // The password goes in on stdin, never in argv.
            let set = try Processes.run("chpasswd", [], stdin: Array("\(name):\(password)\n".utf8))
            guard set.status == .exited(0) else { throw TestSupportError("chpasswd failed: \(set.stderrText)") }
            guard chmod(binaries, 0o755) == 0 else { throw SystemError.last("chmod \(binaries)") }
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    public func remove() {
        guard !removed else { return }
        removed = true
        _ = try? Processes.run("userdel", [name])
        _ = try? Processes.run("/bin/rm", ["-rf", binaries])
    }

    /// A `tether-subsystem` (a copy of `real` this user can execute, behind a small
    /// script) that keeps the fixture's directories for the test's own user and gives
    /// this user `<runtime>-<name>` and `<state>-<name>`.
    public func subsystemWrapper(real: String) throws -> String {
        let copy = binaries + "/tether-subsystem"
        if link(real, copy) != 0 { try Processes.check("/bin/cp", [real, copy]) }
        guard chmod(copy, 0o755) == 0 else { throw SystemError.last("chmod \(copy)") }
        let wrapper = binaries + "/subsystem"
        try Descriptors.writeFile(wrapper, """
            #!/bin/sh
            # sshd runs: subsystem --runtime-dir DIR --state-dir DIR [more]
            if [ "$(id -u)" = "\(uid)" ]; then
                runtime="$2-\(name)"; state="$4-\(name)"; shift 4
                exec \(copy) --runtime-dir "$runtime" --state-dir "$state" "$@"
            fi
            exec \(copy) "$@"

            """, mode: 0o755)
        guard chmod(wrapper, 0o755) == 0 else { throw SystemError.last("chmod \(wrapper)") }
        return wrapper
    }

    /// Lets this user reach its directories beside the fixture's: the fixture's directory
    /// becomes traversable (0711, not listable) and the two are made, owned by the user.
    public func prepare(for fixture: SSHDFixture) throws {
        guard chmod(fixture.directory, 0o711) == 0 else { throw SystemError.last("chmod \(fixture.directory)") }
        for path in [fixture.runtimeDirectory + "-" + name, fixture.stateDirectory + "-" + name] {
            guard mkdir(path, 0o700) == 0 else { throw SystemError.last("mkdir \(path)") }
            guard chown(path, uid, gid) == 0 else { throw SystemError.last("chown \(path)") }
        }
    }

    /// Removes `tether-login-*` users whose creating test process is gone.
    private static func sweepAbandoned() {
        let passwd = String(decoding: Descriptors.readFile("/etc/passwd") ?? [], as: UTF8.self)
        for line in passwd.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count > 4, fields[0].hasPrefix(prefix),
                  let open = fields[4].range(of: "(pid "),
                  let close = fields[4].range(of: ")", range: open.upperBound..<fields[4].endIndex),
                  let pid = pid_t(fields[4][open.upperBound..<close.lowerBound]),
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            _ = try? Processes.run("userdel", [String(fields[0])])
        }
    }
}
