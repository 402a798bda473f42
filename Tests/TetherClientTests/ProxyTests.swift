import XCTest
import Foundation
import TetherTestSupport

/// ProxyJump and ProxyCommand from the ssh config, end to end: the connection runs through
/// a real OpenSSH `ssh -W` on the way. The fixture is its own jump host, so each
/// connection through it is two logins in its sshd log.
final class ProxyTests: CLITestCase {
    override func setUpWithError() throws {
        // With TETHER_TRANSPORT=openssh, ssh runs the proxy itself and words errors its way.
        try XCTSkipIf(ProcessInfo.processInfo.environment["TETHER_TEST_TRANSPORT"] == "openssh",
                      "these test the libssh2 transport's own ProxyCommand/ProxyJump")
        try super.setUpWithError()
    }

    /// Writes the test's ssh config: alpha as it is, plus `name` — alpha's settings with
    /// `extra` added (indented lines).
    private func addHost(_ name: String, _ extra: String) throws {
        let alias = alpha.configuration.hostAlias
        let base = alpha.configuration.sshConfig
        let copy = base.replacingOccurrences(of: "Host \(alias)\n", with: "Host \(name)\n") + extra + "\n"
        let existing = (try? String(contentsOfFile: sshConfigPath, encoding: .utf8)) ?? base
        try writeFile(sshConfigPath, existing + "\n" + copy)
    }

    private func logins() -> Int {
        let log = String(decoding: FileManager.default.contents(atPath: alpha.sshdLogPath) ?? Data(), as: UTF8.self)
        return log.components(separatedBy: "Accepted publickey").count - 1
    }

    func testProxyJumpConnectsThroughSSHW() throws {
        try addHost("via-jump", "    ProxyJump \(alpha.configuration.hostAlias)")
        let before = logins()
        XCTAssertEqual(try check(["invoke", "--computer", "via-jump", "--", "echo through the jump"]), "through the jump\n")
        XCTAssertEqual(logins() - before, 2, "one login on the jump host, one on the target")
    }

    func testProxyCommandRunsWithItsTokensExpanded() throws {
        let marker = workDirectory + "/proxy-marker"
        try addHost("via-command", """
                ProxyCommand sh -c 'echo "%h %p %r %n" > \(marker); exec ssh -F \(sshConfigPath) -W %h:%p \(alpha.configuration.hostAlias)'
            """)
        let before = logins()
        XCTAssertEqual(try check(["invoke", "--computer", "via-command", "--", "echo through the command"]),
                       "through the command\n")
        XCTAssertEqual(logins() - before, 2)
        let recorded = String(decoding: FileManager.default.contents(atPath: marker) ?? Data(), as: UTF8.self)
        XCTAssertEqual(recorded, "127.0.0.1 \(alpha.port) \(alpha.configuration.user) via-command\n")
    }

    func testAConnectionWhoseProxyIsKilledResumesWithEveryLineOnce() throws {
        try addHost("via-jump", "    ProxyJump \(alpha.configuration.hostAlias)")
        let loop = "for i in $(seq 1 30); do echo \"line $i\"; sleep 0.05; done"
        let run = try startTether(["invoke", "--computer", "via-jump", "--", loop], label: "killed-proxy")
        try waitUntil("line 5 printed") { run.stdoutText.contains("line 5\n") }
        let proxies = processes(commandLineContaining: "-F \(sshConfigPath) -W ")
        XCTAssertFalse(proxies.isEmpty, "the ssh -W carrying the connection is running")
        for pid in proxies { kill(pid, SIGKILL) }

        XCTAssertEqual(try run.wait(timeout: 60), .exited(0), run.stderrText)
        XCTAssertEqual(run.stdoutText, (1...30).map { "line \($0)\n" }.joined(), "every line once, in order")
        let stderr = run.stderrText
        XCTAssertTrue(stderr.contains("tether: via-jump: connection lost (the proxy command `ssh -F"), stderr)
        XCTAssertTrue(stderr.contains("was killed by signal 9 (SIGKILL)); reconnecting…\n"), stderr)
        XCTAssertTrue(stderr.contains("tether: via-jump: reconnected\n"), stderr)
    }

    private func processes(commandLineContaining text: String) -> [pid_t] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), let raw = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { return nil }
            let commandLine = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return commandLine.contains(text) ? pid : nil
        }
    }

    private func waitUntil(_ what: String, timeout: Double = 20, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else { throw TestSupportError("timed out waiting for: \(what)") }
            usleep(10_000)
        }
    }

    func testAFailingProxyCommandIs255AndSaysWhatItPrinted() throws {
        try addHost("via-nothing", "    ProxyCommand sh -c 'echo no route to the moon >&2; exit 3'")
        let result = try tether(["invoke", "--computer", "via-nothing", "--", "true"], timeout: 30)
        XCTAssertEqual(result.status, .exited(255), result.stderrText)
        XCTAssertTrue(result.stderrText.hasPrefix("tether: via-nothing"), result.stderrText)
        XCTAssertTrue(result.stderrText.contains("exited with status 3"), result.stderrText)
        XCTAssertTrue(result.stderrText.contains("no route to the moon"), result.stderrText)
        XCTAssertEqual(result.stderrText.split(separator: "\n").count, 1, result.stderrText)

        let closedPort = try closedLoopbackPort()
        try addHost("via-closed", "    ProxyJump nobody@127.0.0.1:\(closedPort)")
        let refused = try tether(["invoke", "--computer", "via-closed", "--", "true"], timeout: 30)
        XCTAssertEqual(refused.status, .exited(255), refused.stderrText)
        XCTAssertTrue(refused.stderrText.contains("port \(closedPort)"), refused.stderrText)
        XCTAssertTrue(refused.stderrText.lowercased().contains("refused"), refused.stderrText)
    }
}
