import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// `tether import` / `tether export` (Import-PSSession, Export-PSSession) end to end: the
/// code is generated against a real session behind the real sshd and evaluated by a real
/// local bash, whose functions then run their commands in the session.
final class ImplicitRemotingTests: CLITestCase {
    private var pane: TmuxPane?

    override func tearDown() {
        if let run = testRun, !run.hasSucceeded, let pane {
            print("---- tmux screen:\n\((try? pane.screen()) ?? "?")")
        }
        pane?.kill()
        pane = nil
        super.tearDown()
    }

    private var environment: [String: String] {
        var environment = ["TETHER_HOME": tetherHome, "TETHER_SSH_CONFIG": sshConfigPath]
        if let transport = Environment.get("TETHER_TEST_TRANSPORT") { environment["TETHER_TRANSPORT"] = transport }
        return environment
    }

    /// `bash -c SCRIPT` with `$1` = `code`, in this test's client environment (what a
    /// user's shell is: the same TETHER_HOME and ssh config).
    private func bash(_ script: String, code: String = "", stdin: [UInt8] = [],
                      environment extra: [String: String] = [:], extra arguments: [String] = [],
                      timeout: Double = 60) throws -> CommandResult {
        var environment = Spawn.currentEnvironment().filter {
            !$0.hasPrefix("TETHER_HOME=") && !$0.hasPrefix("TETHER_SSH_CONFIG=") && !$0.hasPrefix("TETHER_TRANSPORT=")
        }
        for (key, value) in self.environment.merging(extra, uniquingKeysWith: { $1 }) { environment.append("\(key)=\(value)") }
        return try Processes.run("/bin/bash", ["--norc", "--noprofile", "-c", script, "bash", code] + arguments,
                                 stdin: stdin, environment: environment, timeout: timeout)
    }

    /// A session `work` with a function, an alias and a program of its own on its PATH.
    private func makeSession() throws {
        try check(["new", "alpha", "--name", "work"])
        let bin = workDirectory + "/remote-bin"
        try check(["invoke", "--name", "work", "--", """
            show() { printf '<%s>\\n' "$@"; }
            fail() { echo "to stderr: $1" >&2; return "$2"; }
            alias greet='echo hello'
            mkdir -p "$1" && printf '#!/bin/sh\\necho "prog:$#:$*"\\n' > "$1/remoteprog" && chmod +x "$1/remoteprog"
            PATH=$1:$PATH
            """, bin])
    }

    func testImportedFunctionsCarryArgumentsStdinStderrAndStatus() throws {
        try makeSession()
        let code = try check(["import", "--name", "work", "--command", "show,fail,greet,remote*"])
        XCTAssertTrue(code.contains("function show {") && code.contains("function remoteprog {"), code)

        // Arguments exactly as given: spaces, quotes, $, globs, newlines, empty, dashes.
        let shown = try bash(#"""
            eval "$1"
            show 'a b' '' '"q"' "it's" '$HOME' '*' $'line1\nline2' -n -- --x=1
            """#, code: code)
        XCTAssertEqual(shown.status, .exited(0), shown.stderrText)
        XCTAssertEqual(shown.stdoutText, "<a b>\n<>\n<\"q\">\n<it's>\n<$HOME>\n<*>\n<line1\nline2>\n<-n>\n<-->\n<--x=1>\n")
        XCTAssertEqual(shown.stderrText, "")

        // stderr and the exit status; an alias and a program of the session's PATH.
        let failed = try bash(#"eval "$1"; fail 'went wrong' 7; echo "status $?"; greet world; remoteprog 'x y' z"#, code: code)
        XCTAssertEqual(failed.stdoutText, "status 7\nhello world\nprog:2:x y z\n")
        XCTAssertEqual(failed.stderrText, "to stderr: went wrong\n")

        // Piped stdin reaches the command byte for byte (binary, NUL included).
        let cat = try check(["import", "--name", "work", "--command", "cat,wc", "--prefix", "r_"])
        let binary: [UInt8] = [0, 1, 2, 0xff, 0xfe, 0x0a, 0x0d, 0x27, 0x22, 0x5c] + Array(repeating: 0x41, count: 100_000)
        let copied = try bash(#"eval "$1"; r_cat"#, code: cat, stdin: binary)
        XCTAssertEqual(copied.status, .exited(0), copied.stderrText)
        XCTAssertEqual(copied.stdout, binary)
        let counted = try bash(#"eval "$1"; printf 'abc' | r_wc -c; r_wc -l < /dev/null; type -t wc"#, code: cat)
        XCTAssertEqual(counted.stdoutText, "3\n0\nfile\n", counted.stderrText)

        // A command that doesn't read its stdin ends without waiting for the input's end
        // (the pipe's writer stays until the test is over): as with ssh.
        let unread = try bash(#"eval "$1"; { sleep 100 & echo $! > "$2"; wait; } | { show x; echo "ended $?"; kill "$(cat "$2")"; }"#,
                              code: code, environment: [:], extra: [workDirectory + "/sleeper.pid"], timeout: 40)
        XCTAssertEqual(unread.stdoutText, "<x>\nended 0\n", unread.stderrText)
    }

    func testStdinOnATerminalIsNotWaitedFor() throws {
        try makeSession()
        let code = try check(["import", "--name", "work", "--command", "cat", "--prefix", "r_"])
        let file = workDirectory + "/import.bash"
        try writeFile(file, code)
        // r_cat with the terminal as stdin: the session's cat gets end of file at once.
        let shell = "source \(file); r_cat; echo \"cat ended $?\"; sleep 30"
        let pane = try TmuxPane(socket: workDirectory + "/import.tmux", command: ["/bin/bash", "--norc", "-c", shell],
                                environment: environment)
        self.pane = pane
        try pane.waitFor(text: "cat ended 0")
    }

    func testExistingNamesAreKeptUnlessAllowClobber() throws {
        try makeSession()
        // The session's own function history stands in for the builtin there.
        try check(["invoke", "--name", "work", "--", "history() { echo remote history; }"])
        let code = try check(["import", "--name", "work", "--command", "show,greet,cat,history"])
        let kept = try bash(#"""
            shopt -s expand_aliases
            show() { echo local show; }
            alias greet='echo local greet'
            eval "$1"
            show a; greet b; type -t cat history
            """#, code: code)
        XCTAssertEqual(kept.stdoutText, "local show\nlocal greet b\nfile\nbuiltin\n")
        XCTAssertTrue(kept.stderrText.contains("tether: history already exists here (builtin)"), kept.stderrText)
        XCTAssertTrue(kept.stderrText.contains("tether: show already exists here (function): not imported; --allow-clobber replaces it"), kept.stderrText)
        XCTAssertTrue(kept.stderrText.contains("tether: greet already exists here (alias)"), kept.stderrText)
        XCTAssertTrue(kept.stderrText.contains("tether: cat already exists here (file)"), kept.stderrText)

        let clobbering = try check(["import", "--name", "work", "--command", "show,greet,cat,history", "--allow-clobber"])
        let replaced = try bash(#"""
            shopt -s expand_aliases
            show() { echo local show; }
            alias greet='echo local greet'
            eval "$1"
            show a; greet b; history; type -t cat greet
            eval "$1"
            """#, code: clobbering)
        XCTAssertEqual(replaced.stdoutText, "<a>\nhello b\nremote history\nfunction\nfunction\n")
        // Importing the same session again replaces its own functions without a word.
        XCTAssertEqual(replaced.stderrText, "")

        // A pattern that matches nothing is an error; the rest is still printed.
        let partial = try tether(["import", "--name", "work", "--command", "show,nothing-like-this*"])
        XCTAssertEqual(partial.status, .exited(1))
        XCTAssertTrue(partial.stderrText.contains("no function, alias or program of session work matches --command nothing-like-this*"), partial.stderrText)
        XCTAssertTrue(partial.stdoutText.contains("function show {"), partial.stdoutText)
    }

    func testPrefixAndTheSessionsOwnStateAreUsed() throws {
        try makeSession()
        try check(["invoke", "--name", "work", "--", "cd /tmp && counter=41 && here() { echo \"$PWD:$counter\"; }"])
        let code = try check(["import", "--name", "work", "--command", "show,here", "--prefix", "work."])
        let result = try bash(#"eval "$1"; work.show x; work.here; type -t show pwd | tr '\n' ' '"#, code: code)
        XCTAssertEqual(result.stdoutText, "<x>\n/tmp:41\nbuiltin ", result.stderrText)
        // pwd is a builtin: not imported (builtins are the local shell's own).
        let builtin = try tether(["import", "--name", "work", "--command", "pwd"])
        XCTAssertEqual(builtin.status, .exited(1))
        XCTAssertTrue(builtin.stderrText.contains("matches --command pwd (builtins and keywords are not imported"), builtin.stderrText)
        XCTAssertFalse(builtin.stdoutText.contains("pwd {"), builtin.stdoutText)
        try check(["new", "alpha", "--name", "work2"])
        let two = try tether(["import", "--name", "work*", "--command", "show"])
        XCTAssertEqual(two.status, .exited(1))
        XCTAssertTrue(two.stderrText.contains("import takes its commands from one session, but --name work* selects 2"), two.stderrText)
        let bad = try tether(["import", "--name", "work", "--command", "show", "--prefix", "bad prefix"])
        XCTAssertEqual(bad.status, .exited(64), bad.stderrText)
        XCTAssertTrue(bad.stderrText.contains("--prefix 'bad prefix'"), bad.stderrText)
    }

    func testExportedFileRecreatesARemovedSessionAndReconnectsADisconnectedOne() throws {
        // The session is reached only through its own -F file: the file must pass it on.
        let ownConfig = workDirectory + "/own_ssh_config"
        try writeFile(ownConfig, try XCTUnwrap(String(data: FileManager.default.contents(atPath: sshConfigPath) ?? Data(), encoding: .utf8)))
        try check(["new", "alpha", "--name", "keep", "-F", ownConfig, "--idle-timeout", "5000"])
        let file = workDirectory + "/keep.bash"
        // -G: what the session's computer resolves to (its -F remembered), nothing written.
        let resolved = try check(["export", "--name", "keep", "--command", "wc", "--output", file, "-G"])
        XCTAssertTrue(resolved.contains("hostname 127.0.0.1"), resolved)
        XCTAssertNil(Descriptors.readFile(file))
        try check(["export", "--name", "keep", "--command", "wc,uname", "--prefix", "r_", "--output", file])
        let text = String(decoding: Descriptors.readFile(file) ?? [], as: UTF8.self)
        XCTAssertTrue(text.contains("-F \(ownConfig)") && text.contains("--idle-timeout 5000"), text)
        let elsewhere = ["TETHER_SSH_CONFIG": "/dev/null"]
        let oldID = try XCTUnwrap(try getJSON().first?["instanceId"] as? String)

        // A fresh shell while the session is there and held: no note.
        let plain = try bash(#"source "$1"; printf abc | r_wc -c"#, code: file, environment: elsewhere)
        XCTAssertEqual(plain.stdoutText, "3\n")
        XCTAssertEqual(plain.stderrText, "")

        // Removed: the first call creates it again and says so, later calls don't.
        try check(["remove", "--name", "keep"])
        let recreated = try bash(#"source "$1"; printf abc | r_wc -c; r_uname -s; echo status $?"#, code: file, environment: elsewhere)
        XCTAssertEqual(recreated.stdoutText, "3\nLinux\nstatus 0\n", recreated.stderrText)
        XCTAssertEqual(recreated.stderrText.components(separatedBy: "\n").filter { !$0.isEmpty },
                       ["tether: alpha: session keep was gone: created it again (same computer, connection options and name; what the old session defined is not in the new one)"])
        let sessions = try getJSON(["--computer", "alpha", "-F", ownConfig])
        XCTAssertEqual(sessions.count, 1)
        XCTAssertEqual(sessions.first?["name"] as? String, "keep")
        XCTAssertEqual(sessions.first?["state"] as? String, "Opened")
        XCTAssertNotEqual(sessions.first?["instanceId"] as? String, oldID)
        XCTAssertEqual(sessions.first?["idleTimeout"] as? Double, 5000, "\(sessions)")

        // Disconnected: the first call connects it again and says so.
        try check(["disconnect", "--name", "keep"])
        let reconnected = try bash(#"source "$1"; printf ab | r_wc -c"#, code: file, environment: elsewhere)
        XCTAssertEqual(reconnected.stdoutText, "2\n")
        XCTAssertEqual(reconnected.stderrText, "tether: alpha: session keep was disconnected: connected it again\n")
        XCTAssertEqual(try getJSON().first?["state"] as? String, "Opened")

        // Another client (its own TETHER_HOME) finds it held: not taken, the call says so.
        let other = try bash(#"source "$1"; r_wc -c </dev/null"#, code: file,
                             environment: ["TETHER_SSH_CONFIG": "/dev/null", "TETHER_HOME": workDirectory + "/other-home"])
        XCTAssertEqual(other.status, .exited(1), other.stderrText)
        XCTAssertTrue(other.stderrText.contains("session keep is held by client")
                      && other.stderrText.contains("tether connect --computer alpha --name keep --force takes it over"), other.stderrText)
        XCTAssertEqual(other.stdoutText, "")

        // The file is not overwritten by accident.
        let again = try tether(["export", "--name", "keep", "--command", "wc", "--output", file])
        XCTAssertEqual(again.status, .exited(1))
        XCTAssertTrue(again.stderrText.contains("\(file) exists; --force replaces it"), again.stderrText)
        try check(["export", "--name", "keep", "--command", "wc", "--output", file, "--force"])
    }

    func testPowerShellCmdletsImportAndExport() throws {
        try makeSession()
        let code = try check(["Import-PSSession", "-Session", "work", "-CommandName", "show,greet", "-Prefix", "ps_"])
        let result = try bash(#"eval "$1"; ps_show 'x y'; ps_greet"#, code: code)
        XCTAssertEqual(result.stdoutText, "<x y>\nhello\n", result.stderrText)
        let file = workDirectory + "/work.bash"
        try check(["export-pssession", "work", "-OutputModule", file, "-CommandName", "show", "-AllowClobber"])
        let exported = try bash(#"show() { echo mine; }; source "$1"; show z"#, code: file)
        XCTAssertEqual(exported.stdoutText, "<z>\n", exported.stderrText)
        let refused = try tether(["Import-PSSession", "-Session", "work", "-Module", "x"])
        XCTAssertEqual(refused.status, .exited(64))
        XCTAssertTrue(refused.stderrText.contains("-Module has no tether equivalent"), refused.stderrText)
        let help = try check(["help", "powershell"])
        XCTAssertTrue(help.contains("Import-PSSession  →  tether import") && help.contains("-OutputModule"), help)
    }
}
