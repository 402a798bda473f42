import XCTest
import Glibc
import TetherIO
import TetherTestSupport

/// The lock-down README's "For host admins" describes, with a real second Unix user: a
/// group whose members sshd always hands to tether-subsystem (`Match Group` +
/// `ForceCommand`, no TTY, no forwarding), a `bash.conf` that denies them the shell, and
/// a restricted configuration only they may use. Neither `ssh host`, `ssh host cmd`,
/// `ssh -s host sftp` nor any `tether` verb gives them a shell; AllowGroups keeps the
/// other user (us) out of their configuration.
///
/// Needs root: creates a group and a user (groupadd, useradd; removed when the class is done).
final class RestrictedGroupTests: SessionConfigurationTestCase {
    nonisolated(unsafe) static var account: (user: String, group: String, uid: uid_t, gid: gid_t)?
    var account: (user: String, group: String, uid: uid_t, gid: gid_t) { Self.account! }
    var canary: String { workDirectory + "/canary" }

    override func setUpWithError() throws {
        guard geteuid() == 0 else {
            throw XCTSkip("needs root: creates a second Unix user and group (useradd, groupadd)")
        }
        if Self.account == nil { Self.account = try Self.makeAccount() }
        try super.setUpWithError()
        // sshd reads the shared authorized_keys as the user logging in.
        chmod(alpha.directory, 0o711)
        chmod(alpha.configuration.authorizedKeysPath, 0o644)
        try writeFile(sshConfigPath, (try String(contentsOfFile: sshConfigPath, encoding: .utf8)) + """

            Host locked
                HostName 127.0.0.1
                Port \(alpha.port)
                User \(account.user)
                IdentityFile \(alpha.clientKeyPath)
                UserKnownHostsFile \(alpha.knownHostsPath)
                StrictHostKeyChecking yes
                IdentitiesOnly yes
                BatchMode yes

            """)
        try writeConfiguration("bash", """
            # Members of the restricted group get no shell session.
            DenyGroups \(account.group)
            """)
        try writeConfiguration("ops", """
            Description "Operators: uptime and id"
            Kind restricted
            AllowGroups \(account.group)
            Transcript yes
            Command /usr/bin/uptime
            Command /usr/bin/id
            """)
    }

    override class func tearDown() {
        if let account {
            _ = try? Processes.run("userdel", [account.user])
            _ = try? Processes.run("groupdel", [account.group])
            self.account = nil
        }
        super.tearDown()
    }

    static func makeAccount() throws -> (user: String, group: String, uid: uid_t, gid: gid_t) {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let group = "tether-ops-" + suffix
        let user = "tether-op-" + suffix
        let grouped = try Processes.run("groupadd", [group])
        guard grouped.status == .exited(0) else { throw TestSupportError("groupadd: \(grouped.stderrText)") }
        // -p '*': no password, but not a locked account (sshd without PAM refuses those);
        // /bin/sh as the README advises: `sh -c` reads no rc file before the ForceCommand.
        let made = try Processes.run("useradd", ["-M", "-s", "/bin/sh", "-p", "*", "-G", group,
                                                 "-c", "tether tests (pid \(getpid()))", user])
        guard made.status == .exited(0) else { throw TestSupportError("useradd: \(made.stderrText)") }
        guard let entry = getpwnam(user) else { throw TestSupportError("no passwd entry for \(user)") }
        return (user, group, entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    override func fixtureOptions(alias: String) throws -> SSHDFixture.Options {
        var options = try super.fixtureOptions(alias: alias)
        // The user's own directories, and a copy of the subsystem it can run wherever the
        // checkout lives.
        let own = workDirectory + "/locked"
        guard mkdir(own, 0o700) == 0, chown(own, account.uid, account.gid) == 0 else { throw SystemError.last("mkdir \(own)") }
        let binary = workDirectory + "/tether-subsystem"
        let copied = try Processes.run("/bin/cp", [try PackageLayout.builtProduct("tether-subsystem"), binary])
        guard copied.status == .exited(0) else { throw TestSupportError("cp: \(copied.stderrText)") }
        chmod(binary, 0o755)
        options.sshdConfig = [
            "AllowUsers \(account.user)",
            "Subsystem sftp internal-sftp",
            // What README's "For host admins" tells an admin to write.
            "Match Group \(account.group)",
            "    ForceCommand \(binary) --runtime-dir \(own)/run --state-dir \(own)/state --configuration-dir \(configurationDirectory) --syslog-socket \(syslog.path)",
            "    PermitTTY no",
            "    DisableForwarding yes",
            "    PermitTunnel no",
            "    PermitUserRC no",
        ]
        return options
    }

    private func ssh(_ arguments: [String], stdin: String = "") throws -> CommandResult {
        try Processes.run("ssh", alpha.sshArguments + arguments, stdin: Array(stdin.utf8), timeout: 30)
    }

    func testTheGroupGetsNoShellThroughSSH() throws {
        let destination = "\(account.user)@127.0.0.1"
        // Control: we (not in the group) do get a shell, and the canary would appear.
        XCTAssertEqual(try ssh([alpha.destination, "echo shell"]).stdoutText, "shell\n")

        let command = try ssh([destination, "touch \(canary); id"])
        XCTAssertFalse(command.stdoutText.contains("uid="), "ssh host cmd ran the command: \(command.stdoutText)")
        let login = try ssh(["-T", destination], stdin: "touch \(canary)\nid\n")
        XCTAssertFalse(login.stdoutText.contains("uid="), "ssh host gave a shell: \(login.stdoutText)")
        let tty = try ssh(["-tt", destination], stdin: "touch \(canary)\nid\n")
        XCTAssertFalse(tty.stdoutText.contains("uid="), "ssh -t host gave a shell: \(tty.stdoutText)")
        XCTAssertEqual(access(canary, F_OK), -1, "nothing the user sent ran in a shell")

        // sftp: works for us, not for them (they get tether-subsystem, which speaks no sftp).
        let batch = "ls /\n"
        let sftpArguments = ["-b", "-", "-F", "/dev/null", "-P", String(alpha.port), "-i", alpha.clientKeyPath,
                             "-o", "UserKnownHostsFile=\(alpha.knownHostsPath)", "-o", "StrictHostKeyChecking=yes",
                             "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
        let ours = try Processes.run("sftp", sftpArguments + [alpha.destination], stdin: Array(batch.utf8), timeout: 30)
        XCTAssertEqual(ours.status, .exited(0), "control: sftp works for a normal user: \(ours.stderrText)")
        let theirs = try Processes.run("sftp", sftpArguments + [destination], stdin: Array(batch.utf8), timeout: 30)
        XCTAssertNotEqual(theirs.status, .exited(0), "sftp must not work for the group: \(theirs.stdoutText)")
        let subsystem = try ssh(["-s", destination, "sftp"], stdin: "touch \(canary)\n")
        XCTAssertFalse(subsystem.stdoutText.contains("uid="))
        // Port forwarding is off too (a way to reach the user's own sockets or a shell elsewhere).
        let forward = try ssh(["-N", "-o", "ExitOnForwardFailure=yes", "-L", "0:127.0.0.1:\(alpha.port)", destination])
        XCTAssertNotEqual(forward.status, .exited(0), "forwarding must be refused: \(forward.stderrText)")
        XCTAssertEqual(access(canary, F_OK), -1)
    }

    func testTheGroupGetsOnlyItsRestrictedConfigurationThroughTether() throws {
        // Only what they may use is listed.
        let listed = try check(["configurations", "--computer", "locked"])
        XCTAssertTrue(listed.contains("ops  restricted locked       Operators: uptime and id"), listed)
        XCTAssertFalse(listed.contains("bash"), listed)

        // Every way to a shell session is refused.
        let new = try tether(["new", "locked", "--name", "sh"])
        XCTAssertEqual(new.status, .exited(1))
        XCTAssertTrue(new.stderrText.contains("you may not use session configuration 'bash': user \(account.user) is in group \(account.group), which matches DenyGroups \(account.group)"),
                      new.stderrText)
        let fanOut = try tether(["invoke", "--computer", "locked", "--", "touch \(canary)"])
        XCTAssertEqual(fanOut.status, .exited(1), fanOut.stderrText)
        let disconnected = try tether(["invoke", "--computer", "locked", "--in-disconnected-session", "--session-name", "x",
                                       "--", "touch \(canary)"])
        XCTAssertEqual(disconnected.status, .exited(1), disconnected.stderrText)
        XCTAssertEqual(try getJSON(["--computer", "locked"]).count, 0)

        // Their restricted endpoint works, and only for what it allows.
        try check(["new", "locked", "--configuration", "ops", "--name", "ops"])
        XCTAssertTrue(try check(["invoke", "--name", "ops", "--", "uptime"]).contains("load average"))
        XCTAssertTrue(try check(["invoke", "--name", "ops", "--", "id"]).contains("(\(account.group))"))
        for line in ["touch \(canary)", "id; touch \(canary)", "/bin/sh -c 'touch \(canary)'", "uptime `touch \(canary)`"] {
            let refused = try tether(["invoke", "--name", "ops", "--", line])
            XCTAssertEqual(refused.status, .exited(1), line)
            XCTAssertTrue(refused.stderrText.contains("refused by session configuration 'ops'"), refused.stderrText)
        }
        let job = try tether(["invoke", "--name", "ops", "--as-job", "--", "touch \(canary)"])
        XCTAssertEqual(job.status, .exited(1), "no job (a copy of a shell) in a restricted session")
        XCTAssertEqual(access(canary, F_OK), -1)
        XCTAssertTrue(try check(["get"]).contains(" ops "), "ConfigurationName ops")

        // AllowGroups: the other user — us, not in the group — may not use it.
        let ours = try tether(["new", "alpha", "--configuration", "ops"])
        XCTAssertEqual(ours.status, .exited(1))
        XCTAssertTrue(ours.stderrText.contains("you may not use session configuration 'ops': user \(alpha.user) is in none of AllowGroups \(account.group)"),
                      ours.stderrText)

        // Their commands are in the log, with who they are.
        let lines = try syslog.waitForLines { lines in lines.contains { $0.contains("COMMAND#2=id ; EXIT=0") } }
        XCTAssertTrue(lines.contains { $0.contains("]: \(account.user) : CLIENT=127.0.0.1 ") && $0.contains("COMMAND#1=uptime ; ALLOWED") },
                      "\(lines)")
        XCTAssertTrue(lines.contains { $0.contains("]: \(account.user) : ") && $0.contains("; REFUSED: ") }, "\(lines)")
    }
}
