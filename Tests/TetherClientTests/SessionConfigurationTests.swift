import XCTest
import Glibc
import TetherIO
import TetherTestSupport

/// Session configurations end to end: a configuration directory written by the test, a
/// subsystem started by the real sshd with `--configuration-dir` (and `--syslog-socket`, a
/// datagram socket of the test's standing in for /dev/log), and the real `tether` CLI.
class SessionConfigurationTestCase: CLITestCase {
    var configurationDirectory: String { workDirectory + "/conf.d" }
    var syslog: SyslogSink!

    override func fixtureOptions(alias: String) throws -> SSHDFixture.Options {
        // Root's (or our own) and not writable by others: what the host trusts.
        chmod(workDirectory, 0o755)
        if mkdir(configurationDirectory, 0o755) != 0 && errno != EEXIST { throw SystemError.last("mkdir") }
        if syslog == nil { syslog = try SyslogSink(path: workDirectory + "/log.sock") }
        return SSHDFixture.Options(hostAlias: alias, subsystemArguments: [
            "--configuration-dir", configurationDirectory, "--syslog-socket", syslog.path,
        ])
    }

    override func tearDown() {
        syslog?.close()
        super.tearDown()
    }

    func writeConfiguration(_ name: String, _ text: String) throws {
        let path = configurationDirectory + "/" + name + ".conf"
        try writeFile(path, text)
        chmod(path, 0o644)
    }

    func writeScript(_ path: String, _ text: String, mode: mode_t = 0o755) throws {
        try writeFile(path, text)
        chmod(path, mode)
    }
}

final class SessionConfigurationTests: SessionConfigurationTestCase {
    func testShellConfigurationRunsItsStartupScriptWithItsEnvironmentAndDirectory() throws {
        let startup = workDirectory + "/startup.sh"
        try writeScript(startup, """
            greet() { echo "hello from $GREETING"; }
            STARTED_BY_SCRIPT=yes
            echo "startup output goes to the journal"
            """, mode: 0o644)
        let place = workDirectory + "/place"
        XCTAssertEqual(mkdir(place, 0o755), 0)
        try writeConfiguration("dev", """
            # A shell with the team's helpers.
            Description "Developers' shell"
            Kind shell
            Environment GREETING=dev-config TEAM=web
            WorkingDirectory \(place)
            StartupScript \(startup)
            Transcript yes
            """)

        try check(["new", "alpha", "--configuration", "dev", "--name", "s"])
        let output = try check(["invoke", "--name", "s", "--", #"greet; echo "$TEAM $STARTED_BY_SCRIPT"; pwd"#])
        // What the startup script printed nobody has read yet: the first invoke shows it
        // ahead of its own output (issue 11: output is never acknowledged unseen).
        XCTAssertEqual(output, "startup output goes to the journal\nhello from dev-config\nweb yes\n\(place)\n")
        // The ConfigurationName column says which configuration the session runs.
        let rows = try getJSON()
        XCTAssertEqual(rows.first?["configurationName"] as? String, "dev")
        XCTAssertTrue(try check(["get"]).contains(" dev "), "the table's ConfigurationName column")
        // A shell configuration's transcript has each script as it was sent.
        let lines = try syslog.waitForLines { $0.contains { $0.contains("; EXIT=0") } }
        XCTAssertTrue(lines.contains { $0.contains(#"CONFIGURATION=dev ; SESSION=s ("#) && $0.contains(#"COMMAND#1=greet; echo "$TEAM $STARTED_BY_SCRIPT"; pwd ; ALLOWED"#) },
                      "\(lines)")
    }

    func testRestrictedConfigurationRunsOnlyWhatItsRulesAllow() throws {
        let canary = workDirectory + "/canary"
        try writeConfiguration("ops", """
            Description "Look, don't touch"
            Kind restricted
            AllowUsers \(alpha.user)
            Environment ROLE=operator
            WorkingDirectory /
            Transcript yes
            Command /usr/bin/uptime
            Command /bin/echo *
            Command /usr/bin/cat
            Command /usr/bin/env
            Command /usr/bin/pwd
            Command /usr/bin/ls /nonexistent-for-tether
            """)
        try check(["new", "alpha", "--configuration", "ops", "--name", "ops"])

        // What the rules allow works like any invoke: stdout, stderr, stdin, exit status.
        XCTAssertTrue(try check(["invoke", "--name", "ops", "--", "uptime"]).contains("load average"))
        XCTAssertEqual(try check(["invoke", "--name", "ops", "--", "echo hi"]), "hi\n")
        XCTAssertEqual(try check(["invoke", "--name", "ops", "--", "echo", "two words"]), "two words\n")
        XCTAssertEqual(try check(["invoke", "--name", "ops", "--", "/bin/echo 'quoted; not a separator'"]),
                       "quoted; not a separator\n")
        XCTAssertEqual(try check(["invoke", "--name", "ops", "--", "cat"], stdin: Array("from stdin".utf8)), "from stdin")
        XCTAssertEqual(try check(["invoke", "--name", "ops", "--", "pwd"]), "/\n")
        let failing = try tether(["invoke", "--name", "ops", "--", "ls /nonexistent-for-tether"])
        XCTAssertEqual(failing.status, .exited(2), failing.stderrText)
        XCTAssertTrue(failing.stderrText.contains("nonexistent-for-tether"), failing.stderrText)
        // The environment is the configuration's and a fixed PATH: nothing of the client's
        // or the login's (no SSH_CONNECTION, no TETHER_*, no LD_*).
        let environment = Set(try check(["invoke", "--name", "ops", "--", "env"]).split(separator: "\n").map(String.init))
        XCTAssertEqual(environment, ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=\(Environment.homeDirectoryOfCurrentUser())",
                                     "USER=\(alpha.user)", "LOGNAME=\(alpha.user)", "ROLE=operator"])

        // Each escape attempt is refused, naming why, and nothing runs: every one would
        // create the canary file if any part of it were executed.
        let attempts: [(String, String)] = [
            ("echo hi; touch \(canary)", "; (a command separator)"),
            ("echo hi && touch \(canary)", "& (background or &&)"),
            ("echo hi || touch \(canary)", "| (a pipe or ||)"),
            ("echo hi | touch \(canary)", "| (a pipe or ||)"),
            ("echo $(touch \(canary))", "$ (an expansion)"),
            ("echo \"$(touch \(canary))\"", "inside double quotes"),
            ("echo `touch \(canary)`", "` (command substitution)"),
            ("echo hi > \(canary)", "> (a redirection)"),
            ("echo hi >> \(canary)", "> (a redirection)"),
            ("cat < /etc/shadow", "< (a redirection)"),
            ("echo \(workDirectory)/*", "* (a glob)"),
            ("echo ~root", "~ (home directory expansion)"),
            ("LD_PRELOAD=/tmp/evil.so uptime", "environment assignments are not accepted"),
            ("PATH=\(workDirectory) uptime", "environment assignments are not accepted"),
            ("/usr/bin/touch \(canary)", "/usr/bin/touch is not the path of any Command rule"),
            ("touch \(canary)", "no Command rule allows a program named \"touch\""),
            ("/bin/sh -c 'touch \(canary)'", "/bin/sh is not the path of any Command rule"),
            ("bash -c 'touch \(canary)'", "no Command rule allows a program named \"bash\""),
            ("../../../usr/bin/touch \(canary)", "never by a relative path"),
            ("/usr/bin/../bin/touch \(canary)", "is not the path of any Command rule"),
            ("echo hi touch \(canary)", "Command /bin/echo * (ops.conf:8): takes 1 argument, not 3"),
            ("env touch \(canary)", "Command /usr/bin/env (ops.conf:10): takes 0 arguments, not 2"),
            ("ls /nonexistent-for-tether \(canary)", "takes 1 argument, not 2"),
            ("tоuch \(canary)", "no Command rule allows a program named \"tоuch\""),  // Cyrillic о
            ("echo hi\ntouch \(canary)", "a newline (one command per line)"),
            ("echo hi；touch \(canary)", "takes 1 argument, not 2"),  // a fullwidth semicolon is only a character
            ("echo {a,b}", "{ (brace expansion)"),
            ("echo " + String(repeating: "x", count: 9000), "at most 8192 are accepted"),
        ]
        XCTAssertGreaterThanOrEqual(attempts.count, 15)
        for (line, reason) in attempts {
            let result = try tether(["invoke", "--name", "ops", "--", line])
            XCTAssertEqual(result.status, .exited(1), "\(line.debugDescription) must be refused: \(result.stdoutText)")
            XCTAssertTrue(result.stderrText.contains("refused by session configuration 'ops'"), "\(line.debugDescription): \(result.stderrText)")
            XCTAssertTrue(result.stderrText.contains(reason), "\(line.debugDescription): \(result.stderrText)")
            XCTAssertEqual(result.stdoutText, "", line.debugDescription)
        }
        // Arguments after `--` are words as they are, matched like any other.
        let injected = try tether(["invoke", "--name", "ops", "--", "echo", "hi", "--", "touch", canary])
        XCTAssertEqual(injected.status, .exited(1))
        XCTAssertTrue(injected.stderrText.contains("takes 1 argument, not 4"), injected.stderrText)
        // Jobs run a copy of the session's shell: a restricted session has none to copy.
        let job = try tether(["invoke", "--name", "ops", "--as-job", "--", "touch \(canary)"])
        XCTAssertEqual(job.status, .exited(1), job.stdoutText)
        XCTAssertTrue(job.stderrText.contains("refused by session configuration 'ops': jobs run in a copy of the session's shell, and a restricted session has none"),
                      job.stderrText)
        XCTAssertEqual(access(canary, F_OK), -1, "nothing of any refused line ran")
        // The canary check is real: the same line in a shell session does create it.
        try check(["new", "alpha", "--name", "shell"])
        try check(["invoke", "--name", "shell", "--", "echo hi; touch \(canary)"])
        XCTAssertEqual(access(canary, F_OK), 0)

        // The session is unharmed, and so is a temporary one with the configuration.
        XCTAssertEqual(try check(["invoke", "--name", "ops", "--", "echo 'still here'"]), "still here\n")
        XCTAssertTrue(try check(["invoke", "--computer", "alpha", "--configuration", "ops", "--", "uptime"]).contains("load average"))

        // Output of a restricted command is journaled like any: started in a session
        // nobody holds, it is all there for a later receive.
        try check(["invoke", "--computer", "alpha", "--configuration", "ops", "--in-disconnected-session",
                   "--session-name", "later", "--", "echo 'kept for later'"])
        XCTAssertEqual(try check(["receive", "--computer", "alpha", "--name", "later"]), "kept for later\n")

        // Transcript yes: allowed, refused and how each ended, in the system log.
        let lines = try syslog.waitForLines { lines in
            lines.contains { $0.contains("COMMAND=echo hi; touch") } && lines.filter { $0.contains("EXIT=") }.count >= 8
        }
        let user = alpha.user
        let allowed = try XCTUnwrap(lines.first { $0.contains("=uptime ; ALLOWED") }, "\(lines)")
        XCTAssertTrue(allowed.hasPrefix("<85>"), "authpriv.notice: \(allowed)")
        XCTAssertTrue(allowed.contains(" tether["), allowed)
        XCTAssertTrue(allowed.contains("]: \(user) : CLIENT=127.0.0.1 "), allowed)
        XCTAssertTrue(allowed.contains("; CONFIGURATION=ops ; SESSION=ops ("), allowed)
        XCTAssertTrue(allowed.contains("; ALLOWED (ops.conf:7)"), allowed)
        XCTAssertTrue(lines.contains { $0.contains("=uptime ; EXIT=0") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.contains("=ls /nonexistent-for-tether ; EXIT=2") }, "\(lines)")
        let refused = try XCTUnwrap(lines.first { $0.contains("COMMAND=echo hi; touch") }, "\(lines)")
        XCTAssertTrue(refused.hasPrefix("<84>"), "authpriv.warning: \(refused)")
        XCTAssertTrue(refused.contains("; REFUSED: ; (a command separator) at byte 8"), refused)
        XCTAssertTrue(lines.contains { $0.contains("COMMAND=echo hi\\ntouch") }, "a newline is escaped, one entry per line: \(lines)")
        XCTAssertFalse(lines.contains { $0.contains("CONFIGURATION=bash") }, "the shell session has no transcript")
    }

    func testRestrictedCommandIsInterruptedAndTheSessionGoesOn() throws {
        try writeConfiguration("ops", """
            Kind restricted
            AllowUsers \(alpha.user)
            Command /usr/bin/sleep [0-9]*
            Command /bin/echo *
            """)
        try check(["new", "alpha", "--configuration", "ops", "--name", "ops"])
        let marker = "4242\(getpid() % 1000)"
        let running = try startTether(["invoke", "--name", "ops", "--", "sleep \(marker)"], label: "sleep")
        let isTheSleep = { (process: ProcessEntry) in process.arguments == ["/usr/bin/sleep", marker] && !process.isZombie }
        try eventually("the allowed sleep runs") { ProcessTable.snapshot().contains(where: isTheSleep) }
        kill(running.pid, SIGINT)  // Ctrl-C: SIGINT to the command's process group on the host
        XCTAssertEqual(try running.wait(), .exited(130))
        try eventually("the sleep is gone") { !ProcessTable.snapshot().contains(where: isTheSleep) }
        XCTAssertEqual(try check(["invoke", "--name", "ops", "--", "echo on"]), "on\n")
    }

    func testEnterARestrictedSessionRunsEachLineAsOneCommandLine() throws {
        try writeConfiguration("ops", """
            Kind restricted
            AllowUsers \(alpha.user)
            Command /bin/echo *
            """)
        // Scripted: each line one command line; a refused one is said and the rest goes on.
        let scripted = try tether(["enter", "alpha", "--configuration", "ops"], stdin: Array("echo one\necho 1; id\necho two\n".utf8))
        XCTAssertEqual(scripted.stdoutText, "one\ntwo\n")
        XCTAssertTrue(scripted.stderrText.contains("refused by session configuration 'ops': ; (a command separator)"), scripted.stderrText)
        XCTAssertEqual(scripted.status, .exited(0), "the last line's status")

        // At a prompt: no shell helpers (history file, directory, completion) to refuse.
        let pane = try TmuxPane(socket: workDirectory + "/enter.tmux", command: [tetherPath, "enter", "alpha", "--configuration", "ops"],
                                environment: ["TETHER_HOME": tetherHome, "TETHER_SSH_CONFIG": sshConfigPath])
        defer { pane.kill() }
        try pane.waitFor(text: "] (restricted)$")
        try pane.typeLine("echo 'at the prompt'")
        try pane.waitFor(text: "at the prompt\n[alpha:")
        try pane.typeLine("echo hi > /tmp/x")
        try pane.waitFor(text: "> (a redirection)")
        try pane.typeLine("exit")
        XCTAssertEqual(try pane.waitForExit(), 1, "the refused line's status")
    }

    func testConfigurationsListsWhatTheUserMayUseAndTheRestIsRefused() throws {
        try writeConfiguration("ops", """
            Description "Operators"
            Kind restricted
            AllowUsers \(alpha.user)
            Command /usr/bin/uptime
            """)
        try writeConfiguration("theirs", """
            Description "Someone else's"
            Kind restricted
            AllowUsers nobody-but-them
            Command /usr/bin/uptime
            """)
        let table = try check(["configurations", "--computer", "alpha"])
        XCTAssertTrue(table.hasPrefix("Name Kind       ComputerName Description\n"), table)
        XCTAssertTrue(table.contains("bash shell      alpha        bash, full shell access (built in)\n"), table)
        XCTAssertTrue(table.contains("ops  restricted alpha        Operators\n"), table)
        XCTAssertFalse(table.contains("theirs"), table)
        let json = try check(["configurations", "--computer", "alpha", "--json"])
        XCTAssertTrue(json.contains(#""kind" : "restricted""#), json)

        let refused = try tether(["new", "alpha", "--configuration", "theirs"])
        XCTAssertEqual(refused.status, .exited(1))
        XCTAssertTrue(refused.stderrText.contains("you may not use session configuration 'theirs': user \(alpha.user) is not in AllowUsers nobody-but-them"),
                      refused.stderrText)
        let unknown = try tether(["invoke", "--computer", "alpha", "--configuration", "nope", "--", "true"])
        XCTAssertEqual(unknown.status, .exited(1))
        XCTAssertTrue(unknown.stderrText.contains("unknown session configuration 'nope' on this host (available to you: bash, ops)"),
                      unknown.stderrText)

        // A bash.conf can take the built-in shell away.
        try writeConfiguration("bash", "Enabled no\n")
        let noShell = try tether(["new", "alpha"])
        XCTAssertEqual(noShell.status, .exited(1))
        XCTAssertTrue(noShell.stderrText.contains("session configuration 'bash' is disabled on this host"), noShell.stderrText)
        XCTAssertFalse(try check(["configurations", "--computer", "alpha"]).contains("bash"))
        XCTAssertEqual(try getJSON(["--computer", "alpha"]).count, 0, "nothing was started")
    }

    func testMaxSessionsPerUser() throws {
        try writeConfiguration("one", """
            Kind shell
            MaxSessionsPerUser 1
            """)
        try check(["new", "alpha", "--configuration", "one", "--name", "first"])
        let second = try tether(["new", "alpha", "--configuration", "one", "--name", "second"])
        XCTAssertEqual(second.status, .exited(1))
        XCTAssertTrue(second.stderrText.contains("session configuration 'one' allows 1 session per user (MaxSessionsPerUser) and you have 1 (first); remove one first"),
                      second.stderrText)
        try check(["new", "alpha", "--name", "other-configuration"])  // bash is not limited
        try check(["remove", "--name", "first"])
        try check(["new", "alpha", "--configuration", "one", "--name", "second"])
    }

    func testBrokenConfigurationIsCaughtByCheckAndNeverUsed() throws {
        try writeConfiguration("broken", """
            Kind restricted
            AllowUsers \(alpha.user)
            Comand /usr/bin/uptime
            Command /usr/bin/no-such-program-here
            Command /bin/echo [unclosed
            """)
        try writeConfiguration("fine", "Kind shell\n")
        let checked = try Processes.run(alpha.subsystemPath, ["check-configurations", "--configuration-dir", configurationDirectory])
        XCTAssertEqual(checked.status, .exited(1), checked.stdoutText)
        let file = configurationDirectory + "/broken.conf"
        XCTAssertTrue(checked.stderrText.contains("\(file):3: unknown keyword \"Comand\" (did you mean Command?)\n"), checked.stderrText)
        XCTAssertTrue(checked.stderrText.contains("\(file):4: Command /usr/bin/no-such-program-here: cannot stat"), checked.stderrText)
        XCTAssertTrue(checked.stderrText.contains("\(file):5: Command /bin/echo, argument pattern 1 \"[unclosed\": has a [ with no closing ]"), checked.stderrText)
        XCTAssertTrue(checked.stderrText.contains("3 problems in \(configurationDirectory)"), checked.stderrText)

        let refused = try tether(["new", "alpha", "--configuration", "broken"])
        XCTAssertEqual(refused.status, .exited(1))
        XCTAssertTrue(refused.stderrText.contains("session configuration 'broken' has errors and can't be used; the host admin can see them with tether-subsystem check-configurations"),
                      refused.stderrText)
        XCTAssertFalse(try check(["configurations", "--computer", "alpha"]).contains("broken"))

        // A file others could write is refused like sshd refuses one.
        try FileManager.default.removeItem(atPath: file)
        chmod(configurationDirectory + "/fine.conf", 0o666)
        let unsafe = try Processes.run(alpha.subsystemPath, ["check-configurations", "--configuration-dir", configurationDirectory])
        XCTAssertEqual(unsafe.status, .exited(1))
        XCTAssertTrue(unsafe.stderrText.contains("fine.conf is writable by its group (mode 666): refusing to trust it"), unsafe.stderrText)
        XCTAssertEqual(try tether(["new", "alpha", "--configuration", "fine"]).status, .exited(1))
        chmod(configurationDirectory + "/fine.conf", 0o644)
        let good = try Processes.run(alpha.subsystemPath, ["check-configurations", "--configuration-dir", configurationDirectory])
        XCTAssertEqual(good.status, .exited(0), good.stderrText)
        XCTAssertEqual(good.stdoutText, "bash\tshell\tbuilt in\nfine\tshell\t\(configurationDirectory)/fine.conf\n")
    }
}

/// A syslog datagram socket of the test's own, in place of /dev/log, drained all the time
/// by a thread of its own (as journald drains /dev/log: the queue holds only 10 datagrams).
final class SyslogSink: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []  // guarded by lock
    private var closed = false  // guarded by lock

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.last("socket") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw SystemError.last("bind \(path)") }
        chmod(path, 0o666)  // runspaces of another test user log here too
        let thread = Thread { [self] in self.drain() }
        thread.start()
    }

    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, 200)
            if lock.withLock({ closed }) { return }
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n > 0 {
                let line = String(decoding: buffer[0..<n], as: UTF8.self)
                lock.withLock { received.append(line) }
            }
        }
    }

    /// Every line received so far, once `condition` holds for them (30 s at most).
    func waitForLines(_ condition: ([String]) -> Bool) throws -> [String] {
        let deadline = Deadline(secondsFromNow: 30)
        while true {
            let lines = lock.withLock { received }
            if condition(lines) { return lines }
            if deadline.hasPassed { throw TestSupportError("the expected transcript lines did not arrive; got:\n\(lines.joined(separator: "\n"))") }
            usleep(20_000)
        }
    }

    func close() {
        let wasOpen = lock.withLock { () -> Bool in
            defer { closed = true }
            return !closed
        }
        guard wasOpen else { return }
        usleep(250_000)  // the thread sees `closed` within one poll
        Glibc.close(fd)
        unlink(path)
    }
}
