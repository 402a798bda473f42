import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// Password and keyboard-interactive logins (issue 12, item 4), end to end: a throwaway
/// user with a known password, a real sshd that allows both (keyboard-interactive through
/// PAM), the person at a tmux terminal. The prompts are ssh's; the CLI asks and hands the
/// answer to the keeper over its socket, so one answer serves later commands; refusals
/// end as ssh's do (exit 255, "Permission denied (…)").
///
/// Needs root (useradd, chpasswd, sshd reading /etc/shadow through PAM).
final class PasswordLoginTests: CLITestCase {
    private var user: LoginUser!

    override func setUpWithError() throws {
        guard geteuid() == 0 else {
            throw XCTSkip("needs root: creates a user with a password (useradd, chpasswd) that sshd checks")
        }
        try XCTSkipIf(ProcessInfo.processInfo.environment["TETHER_TEST_TRANSPORT"] == "openssh",
                      "the OpenSSH transport runs ssh in BatchMode: these test the libssh2 transport's prompts")
        user = try LoginUser()
        try super.setUpWithError()
        try user.prepare(for: alpha)
    }

    override func tearDown() {
        super.tearDown()
        user?.remove()
    }

    override func fixtureOptions(alias: String) throws -> SSHDFixture.Options {
        var options = SSHDFixture.Options(hostAlias: alias)
        options.subsystemPath = try user.subsystemWrapper(real: try PackageLayout.builtProduct("tether-subsystem"))
        options.extraUsers = [user.name]
        options.usePAM = true
        options.sshdConfig = ["Match User \(user.name)", "    PasswordAuthentication yes", "    KbdInteractiveAuthentication yes"]
        return options
    }

    /// A host block for the password user: no key to offer, no agent.
    private func addHost(_ name: String, _ extra: [String]) throws {
        let lines = ["Host \(name)", "    HostName 127.0.0.1", "    Port \(alpha.port)", "    User \(user.name)",
                     "    UserKnownHostsFile \(alpha.knownHostsPath)", "    StrictHostKeyChecking yes",
                     "    IdentityAgent none", "    IdentitiesOnly yes", "    IdentityFile \(workDirectory)/no-such-key"]
            + extra.map { "    " + $0 }
        let existing = (try? String(contentsOfFile: sshConfigPath, encoding: .utf8)) ?? ""
        try writeFile(sshConfigPath, existing + "\n" + lines.joined(separator: "\n") + "\n")
    }

    private func pane(_ label: String, _ script: String, environment: [String: String] = [:]) throws -> TmuxPane {
        try TmuxPane(socket: workDirectory + "/\(label).tmux", command: ["/bin/sh", "-c", script],
                     environment: ["TETHER_HOME": tetherHome, "TETHER_SSH_CONFIG": sshConfigPath].merging(environment) { $1 })
    }

    /// Every keeper log of this uid (where a secret must never be).
    private func keeperLogs() throws -> String {
        try Processes.run("/bin/sh", ["-c", "cat /tmp/tether-client-$(id -u)/keeper-*.log ${XDG_RUNTIME_DIR:-/nonexistent}/tether/keeper-*.log 2>/dev/null; true"]).stdoutText
    }

    func testAPasswordTypedOnceServesTheKeeperLinkForLaterCommands() throws {
        try addHost("pw", ["PreferredAuthentications password"])
        let script = (1...4).map { "\(tetherPath) invoke --computer pw -- 'echo command-\($0) $(id -un)'" }.joined(separator: "; ")
            + "; echo ALL-DONE"
        let pane = try pane("password", script)
        defer { pane.kill() }
        // ssh's own prompt, on the terminal.
        try pane.waitFor("the password prompt") { $0.contains("\(user.name)@127.0.0.1's password:") }
        try pane.typeLine(user.password)
        let screen = try pane.waitFor("four commands") { $0.contains("ALL-DONE") }
        for number in 1...4 { XCTAssertTrue(screen.contains("command-\(number) \(user.name)"), screen) }
        XCTAssertEqual(screen.components(separatedBy: "password:").count - 1, 1, "asked once: \(screen)")
        XCTAssertFalse(screen.contains(user.password), "not echoed: \(screen)")
        XCTAssertTrue(alpha.sshdLog.contains("Accepted password for \(user.name)"), alpha.sshdLog)
        XCTAssertFalse(try keeperLogs().contains(user.password), "never in a keeper log")
    }

    func testKeyboardInteractiveAsksTheServersPromptsThroughTheKeeper() throws {
        try addHost("kbd", ["PreferredAuthentications keyboard-interactive"])
        let script = "\(tetherPath) invoke --computer kbd -- 'echo first'; \(tetherPath) invoke --computer kbd -- 'echo second'; echo ALL-DONE"
        let pane = try pane("kbd", script)
        defer { pane.kill() }
        // PAM's prompt, prefixed with the login as ssh does.
        try pane.waitFor("PAM's prompt") { $0.contains("(\(user.name)@127.0.0.1) Password:") }
        try pane.typeLine(user.password)
        let screen = try pane.waitFor("both commands") { $0.contains("ALL-DONE") }
        XCTAssertTrue(screen.contains("first") && screen.contains("second"), screen)
        XCTAssertEqual(screen.components(separatedBy: "Password:").count - 1, 1, "asked once: \(screen)")
        XCTAssertTrue(alpha.sshdLog.contains("Accepted keyboard-interactive/pam for \(user.name)"), alpha.sshdLog)
        // The keeper stopped before answering PAM itself: no failed attempt was logged.
        XCTAssertFalse(alpha.sshdLog.contains("Failed keyboard-interactive"), alpha.sshdLog)
        XCTAssertFalse(try keeperLogs().contains(user.password), "never in a keeper log")
    }

    func testWrongPasswordsAreRefusedAsSSHRefusesThem() throws {
        try addHost("pw-wrong", ["PreferredAuthentications password", "NumberOfPasswordPrompts 2"])
        let pane = try pane("wrong", "\(tetherPath) invoke --computer pw-wrong -- true")
        defer { pane.kill() }
        try pane.waitFor("the password prompt") { $0.contains("password:") }
        try pane.typeLine("not-the-password")
        try pane.waitFor("the second prompt, after ssh's words") {
            $0.contains("Permission denied, please try again.") && $0.components(separatedBy: "password:").count - 1 == 2
        }
        try pane.typeLine("still-not-it")
        XCTAssertEqual(try pane.waitForExit(timeout: 30), 255)
        let screen = try pane.screen()
        XCTAssertTrue(screen.contains("Permission denied (publickey,password,keyboard-interactive)"), screen)
        XCTAssertEqual(screen.components(separatedBy: "password:").count - 1, 2, "NumberOfPasswordPrompts 2: \(screen)")
        XCTAssertEqual(alpha.sshdLog.components(separatedBy: "Failed password for \(user.name)").count - 1, 2, alpha.sshdLog)
    }

    func testSSHAskpassAnswersWithoutATerminalAndNobodyMeansPermissionDenied() throws {
        try addHost("pw-askpass", ["PreferredAuthentications password"])
        let asked = workDirectory + "/asked"
        let askpass = workDirectory + "/askpass"
        try Descriptors.writeFile(askpass, "#!/bin/sh\nprintf '%s\\n' \"$1\" >> \(asked)\necho '\(user.password)'\n", mode: 0o700)
        // setsid: no controlling terminal, so only SSH_ASKPASS can answer.
        let result = try Processes.run("/usr/bin/setsid", ["-w", tetherPath, "invoke", "--computer", "pw-askpass", "--", "echo by askpass"],
                                       environment: environment(["SSH_ASKPASS": askpass, "SSH_ASKPASS_REQUIRE": "force"]))
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        XCTAssertEqual(result.stdoutText, "by askpass\n")
        XCTAssertEqual(String(decoding: Descriptors.readFile(asked) ?? [], as: UTF8.self), "\(user.name)@127.0.0.1's password: \n")

        // Nobody to ask: refused at once, saying why, without a wrong answer sent.
        try addHost("pw-nobody", ["PreferredAuthentications password,keyboard-interactive"])
        let failedBefore = alpha.sshdLog.components(separatedBy: "Failed ").count
        let nobody = try Processes.run("/usr/bin/setsid", ["-w", tetherPath, "invoke", "--computer", "pw-nobody", "--", "true"],
                                       environment: environment([:]))
        XCTAssertEqual(nobody.status, .exited(255), nobody.stderrText)
        XCTAssertTrue(nobody.stderrText.contains("Permission denied (publickey,password,keyboard-interactive)"), nobody.stderrText)
        XCTAssertTrue(nobody.stderrText.contains("no terminal to ask on"), nobody.stderrText)
        XCTAssertEqual(alpha.sshdLog.components(separatedBy: "Failed ").count, failedBefore, alpha.sshdLog)
    }

    func testConfigThatRulesPasswordsOutIsNeverAsked() throws {
        try addHost("pw-off", ["PasswordAuthentication no", "KbdInteractiveAuthentication no"])
        let asked = workDirectory + "/asked"
        let askpass = workDirectory + "/askpass"
        try Descriptors.writeFile(askpass, "#!/bin/sh\necho asked >> \(asked)\necho '\(user.password)'\n", mode: 0o700)
        let result = try Processes.run("/usr/bin/setsid", ["-w", tetherPath, "invoke", "--computer", "pw-off", "--", "true"],
                                       environment: environment(["SSH_ASKPASS": askpass, "SSH_ASKPASS_REQUIRE": "force"]))
        XCTAssertEqual(result.status, .exited(255), result.stderrText)
        XCTAssertTrue(result.stderrText.contains("Permission denied (publickey,password,keyboard-interactive)"), result.stderrText)
        XCTAssertTrue(result.stderrText.contains("password (PasswordAuthentication no)"), result.stderrText)
        XCTAssertNil(Descriptors.readFile(asked), "nobody was asked")
    }

    /// This test's environment for a tether run outside `tether(…)` (under setsid).
    private func environment(_ extra: [String: String]) -> [String] {
        var environment = Spawn.currentEnvironment().filter {
            !$0.hasPrefix("TETHER_HOME=") && !$0.hasPrefix("TETHER_SSH_CONFIG=") && !$0.hasPrefix("TETHER_TRANSPORT=")
                && !$0.hasPrefix("SSH_ASKPASS") && !$0.hasPrefix("DISPLAY=") && !$0.hasPrefix("WAYLAND_DISPLAY=")
        }
        environment += ["TETHER_HOME=\(tetherHome)", "TETHER_SSH_CONFIG=\(sshConfigPath)"]
        environment += extra.map { "\($0.key)=\($0.value)" }
        return environment
    }
}
