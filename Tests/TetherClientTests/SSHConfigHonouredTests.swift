import XCTest
import Foundation
import Glibc
import TetherIO
import TetherProtocol
import TetherSSH
import TetherTestSupport

/// A real ~/.ssh works as with ssh (issue 12), end to end against real sshds: each test
/// writes the ssh config a user would and checks Tether honours it — through libssh2 where
/// it can, through OpenSSH's ssh (saying why) where it can't.
final class SSHConfigHonouredTests: CLITestCase {
    override func setUpWithError() throws {
        try XCTSkipIf(ProcessInfo.processInfo.environment["TETHER_TEST_TRANSPORT"] == "openssh",
                      "these test the automatic transport choice")
        try super.setUpWithError()
    }

    /// A host block for alpha with only the essentials; `extra` lines decide the rest.
    private func addHost(_ name: String, _ extra: [String], fixture: SSHDFixture? = nil,
                         knownHosts: String? = nil, identity: Bool = true) throws {
        let target = fixture ?? alpha
        var lines = ["Host \(name)", "    HostName 127.0.0.1", "    Port \(target.port)", "    User \(target.user)",
                     "    UserKnownHostsFile \(knownHosts ?? target.knownHostsPath)", "    BatchMode yes"]
        lines += extra.map { "    " + $0 }
        if identity { lines += ["    IdentitiesOnly yes", "    IdentityFile \(target.clientKeyPath)"] }
        let existing = (try? String(contentsOfFile: sshConfigPath, encoding: .utf8)) ?? ""
        try writeFile(sshConfigPath, existing + "\n" + lines.joined(separator: "\n") + "\n")
    }

    private func run(_ command: String, _ arguments: [String]) throws -> String {
        let result = try Processes.run(command, arguments)
        XCTAssertEqual(result.status, .exited(0), "\(command) \(arguments): \(result.stderrText)")
        return result.stdoutText
    }

    /// An ssh-agent on `socket` holding `keys`; killed at the end of the test.
    private func startAgent(_ socket: String, keys: [String]) throws {
        let output = try run("ssh-agent", ["-a", socket, "-s"])
        // ssh-agent -s prints "…; export SSH_AUTH_SOCK;\nSSH_AGENT_PID=N; …": trimmed,
        // or the newline hides the PID and the agent outlives the test.
        if let pidText = output.split(separator: ";").map({ $0.trimmingWhitespace() })
            .first(where: { $0.hasPrefix("SSH_AGENT_PID=") }),
           let pid = Int32(pidText.dropFirst("SSH_AGENT_PID=".count)) {
            addTeardownBlock { kill(pid, SIGTERM) }
        }
        for key in keys {
            let added = try Processes.run("ssh-add", [key], environment: ["SSH_AUTH_SOCK=\(socket)", "PATH=/usr/bin:/bin"])
            XCTAssertEqual(added.status, .exited(0), added.stderrText)
        }
    }

    private func authorize(_ publicKeyPath: String, on fixture: SSHDFixture) throws {
        let key = try String(contentsOfFile: publicKeyPath, encoding: .utf8)
        let existing = (try? String(contentsOfFile: fixture.configuration.authorizedKeysPath, encoding: .utf8)) ?? ""
        try writeFile(fixture.configuration.authorizedKeysPath, existing + key)
    }

    private func keygen(_ path: String, type: String = "ed25519", extra: [String] = []) throws {
        _ = try run("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", "test", "-f", path] + extra)
    }

    // MARK: Agents and keys

    func testIdentityAgentPicksTheAgentAndAPubFileSelectsItsKey() throws {
        // The private key is only in the agent; the config names its .pub, as ssh allows.
        let socket = workDirectory + "/agent.sock"
        try startAgent(socket, keys: [alpha.clientKeyPath])
        let pub = workDirectory + "/agent_key.pub"
        try writeFile(pub, try String(contentsOfFile: alpha.clientKeyPath + ".pub", encoding: .utf8))
        try addHost("via-agent", ["StrictHostKeyChecking yes", "IdentityAgent \(socket)", "IdentitiesOnly yes",
                                  "IdentityFile \(pub)"], identity: false)
        let result = try tether(["invoke", "--computer", "via-agent", "--", "echo agent"])
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        XCTAssertEqual(result.stdoutText, "agent\n")

        // IdentityAgent none: the same host has no key to offer.
        try addHost("no-agent", ["StrictHostKeyChecking yes", "IdentityAgent none", "IdentitiesOnly yes",
                                 "IdentityFile \(pub)"], identity: false)
        let refused = try tether(["invoke", "--computer", "no-agent", "--", "true"])
        XCTAssertEqual(refused.status, .exited(255))
        XCTAssertTrue(refused.stderrText.contains("Permission denied (publickey)"), refused.stderrText)
    }

    func testAnRSAOnlyAgentKeyWorksThroughWhicheverTransportCan() throws {
        let rsa = workDirectory + "/rsa_key"
        try keygen(rsa, type: "rsa", extra: ["-b", "2048"])
        try authorize(rsa + ".pub", on: alpha)
        let socket = workDirectory + "/rsa-agent.sock"
        try startAgent(socket, keys: [rsa])
        try addHost("rsa-only", ["StrictHostKeyChecking yes", "IdentityAgent \(socket)"], identity: false)
        let result = try tether(["invoke", "--computer", "rsa-only", "--", "echo rsa"])
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        XCTAssertEqual(result.stdoutText, "rsa\n")
        if result.stderrText.contains("using OpenSSH's ssh") {
            XCTAssertTrue(result.stderrText.contains("RSA"), "the reason names RSA: \(result.stderrText)")
        }
    }

    func testAUserCertificateSignedByATrustedCALogsIn() throws {
        let keys = try CLITestCase.makeTemporaryDirectory()
        addTeardownBlock { _ = try? Processes.run("/bin/rm", ["-rf", keys]) }
        try keygen(keys + "/ca")
        try keygen(keys + "/user")
        _ = try run("ssh-keygen", ["-q", "-s", keys + "/ca", "-I", "tether-test", "-n", alpha.user, keys + "/user.pub"])
        let fixture = try SSHDFixture(SSHDFixture.Options(hostAlias: "certified",
                                                          sshdConfig: ["TrustedUserCAKeys \(keys)/ca.pub"]))
        addTeardownBlock { fixture.stop() }
        // Only the certificate gets in: the plain key is in no authorized_keys.
        try addHost("certified", ["StrictHostKeyChecking yes", "IdentitiesOnly yes", "IdentityFile \(keys)/user",
                                  "CertificateFile \(keys)/user-cert.pub"], fixture: fixture, identity: false)
        let result = try tether(["invoke", "--computer", "certified", "--", "echo certified"])
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        XCTAssertEqual(result.stdoutText, "certified\n")
        if SSHLibrary.isAtLeast1_11 {
            // libssh2 1.11 offers the certificate itself.
            XCTAssertFalse(result.stderrText.contains("using OpenSSH's ssh"), result.stderrText)
            XCTAssertTrue(fixture.sshdLog.contains("Accepted certificate ID"), fixture.sshdLog)
        } else {
            XCTAssertTrue(result.stderrText.contains("using OpenSSH's ssh: CertificateFile"), result.stderrText)
        }
        // The next command shares the warm OpenSSH connection (our ControlMaster).
        XCTAssertEqual(try check(["invoke", "--computer", "certified", "--", "echo again"]), "again\n")
    }

    func testAPassphraseTypedOnceServesTheKeeperLinkForLaterCommands() throws {
        let key = workDirectory + "/locked_key"
        _ = try run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "correct horse", "-C", "locked", "-f", key])
        try authorize(key + ".pub", on: alpha)
        try addHost("locked", ["StrictHostKeyChecking yes", "IdentitiesOnly yes", "IdentityFile \(key)"], identity: false)
        let script = (1...4).map { "\(tetherPath) invoke --computer locked -- 'echo command-\($0)'" }.joined(separator: "; ")
            + "; echo ALL-DONE"
        let pane = try TmuxPane(socket: workDirectory + "/passphrase.tmux", command: ["/bin/sh", "-c", script],
                                environment: ["TETHER_HOME": tetherHome, "TETHER_SSH_CONFIG": sshConfigPath])
        defer { pane.kill() }
        try pane.waitFor("the passphrase prompt") { $0.contains("Enter passphrase for key '\(key)':") }
        try pane.typeLine("correct horse")
        let screen = try pane.waitFor("four commands") { $0.contains("ALL-DONE") }
        for number in 1...4 { XCTAssertTrue(screen.contains("command-\(number)"), screen) }
        XCTAssertEqual(screen.components(separatedBy: "Enter passphrase").count - 1, 1, "asked once: \(screen)")
        XCTAssertEqual(try keeperStatusLinks(), 1, "one warm link served all four")
        // Never on disk: no keeper log holds it.
        let logs = try Processes.run("/bin/sh", ["-c", "cat /tmp/tether-client-$(id -u)/keeper-*.log ${XDG_RUNTIME_DIR:-/nonexistent}/tether/keeper-*.log 2>/dev/null; true"])
        XCTAssertFalse(logs.stdoutText.contains("correct horse"))
    }

    /// Links the keeper holds to `locked`, and how many CLI streams each served.
    private func keeperStatusLinks() throws -> Int {
        let data = Data(try check(["keeper", "--status"]).utf8)
        let status = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let links = try XCTUnwrap(status["links"] as? [[String: Any]])
        return links.filter { $0["destination"] as? String == "locked" }.count
    }

    // MARK: Host keys

    func testAHostCertificateUnderCertAuthorityIsTrusted() throws {
        let keys = try CLITestCase.makeTemporaryDirectory()
        addTeardownBlock { _ = try? Processes.run("/bin/rm", ["-rf", keys]) }
        try keygen(keys + "/ca")
        try keygen(keys + "/hostkey")
        _ = try run("ssh-keygen", ["-q", "-s", keys + "/ca", "-I", "host", "-h", "-n", "127.0.0.1", keys + "/hostkey.pub"])
        let fixture = try SSHDFixture(SSHDFixture.Options(hostAlias: "vouched", sshdConfig: [
            "HostKey \(keys)/hostkey", "HostCertificate \(keys)/hostkey-cert.pub"]))
        addTeardownBlock { fixture.stop() }
        let ca = try String(contentsOfFile: keys + "/ca.pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        let knownHosts = keys + "/known_hosts"
        try writeFile(knownHosts, "@cert-authority * \(ca)\n")
        try addHost("vouched", ["StrictHostKeyChecking yes", "HostKeyAlgorithms ssh-ed25519-cert-v01@openssh.com"],
                    fixture: fixture, knownHosts: knownHosts)
        let result = try tether(["invoke", "--computer", "vouched", "--", "echo vouched"])
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        XCTAssertEqual(result.stdoutText, "vouched\n")
        XCTAssertTrue(result.stderrText.contains("@cert-authority"), result.stderrText)
    }

    func testAHostKnownOnlyByItsRSAKeyIsVerifiedByThatKey() throws {
        let keys = try CLITestCase.makeTemporaryDirectory()
        addTeardownBlock { _ = try? Processes.run("/bin/rm", ["-rf", keys]) }
        try keygen(keys + "/rsa_host", type: "rsa", extra: ["-b", "2048"])
        let fixture = try SSHDFixture(SSHDFixture.Options(hostAlias: "rsa-host", sshdConfig: ["HostKey \(keys)/rsa_host"]))
        addTeardownBlock { fixture.stop() }
        let rsa = try String(contentsOfFile: keys + "/rsa_host.pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        let knownHosts = keys + "/known_hosts"
        try writeFile(knownHosts, "[127.0.0.1]:\(fixture.port) \(rsa)\n")
        try addHost("rsa-host", ["StrictHostKeyChecking yes"], fixture: fixture, knownHosts: knownHosts)
        let result = try tether(["invoke", "--computer", "rsa-host", "--", "echo by rsa"])
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        XCTAssertEqual(result.stdoutText, "by rsa\n")
        // libssh2 1.11 verifies it itself (rsa-sha2); 1.10 hands the host to OpenSSH.
        XCTAssertEqual(result.stderrText.contains("using OpenSSH's ssh"), !SSHLibrary.isAtLeast1_11, result.stderrText)
    }

    func testAskOnATerminalRecordsTheKeyTheUserAccepts() throws {
        let empty = workDirectory + "/asked_known_hosts"
        try writeFile(empty, "")
        // Not BatchMode: ssh's default StrictHostKeyChecking (ask) may ask.
        let lines = ["Host asked", "    HostName 127.0.0.1", "    Port \(alpha.port)", "    User \(alpha.user)",
                     "    UserKnownHostsFile \(empty)", "    IdentitiesOnly yes", "    IdentityFile \(alpha.clientKeyPath)"]
        let existing = (try? String(contentsOfFile: sshConfigPath, encoding: .utf8)) ?? ""
        try writeFile(sshConfigPath, existing + "\n" + lines.joined(separator: "\n") + "\n")
        let pane = try TmuxPane(socket: workDirectory + "/ask.tmux",
                                command: [tetherPath, "invoke", "--computer", "asked", "--", "echo accepted-it"],
                                environment: ["TETHER_HOME": tetherHome, "TETHER_SSH_CONFIG": sshConfigPath])
        defer { pane.kill() }
        try pane.waitFor("ssh's question") { $0.contains("Are you sure you want to continue connecting (yes/no/[fingerprint])?") }
        try pane.typeLine("yes")
        try pane.waitFor(text: "accepted-it")
        XCTAssertEqual(try pane.waitForExit(), 0)
        XCTAssertTrue(try String(contentsOfFile: empty, encoding: .utf8).contains("[127.0.0.1]:\(alpha.port) ssh-"))
        // Known now: no question the next time.
        XCTAssertEqual(try check(["invoke", "--computer", "asked", "--", "echo known"]), "known\n")
    }

    func testHostKeyAliasNamesTheKnownHostsEntry() throws {
        let knownHosts = workDirectory + "/alias_known_hosts"
        let keys = try String(contentsOfFile: alpha.knownHostsPath, encoding: .utf8)
            .split(separator: "\n").map { line in
                "cluster-key " + line.split(separator: " ").dropFirst().joined(separator: " ")
            }
        try writeFile(knownHosts, keys.joined(separator: "\n") + "\n")
        try addHost("aliased", ["StrictHostKeyChecking yes", "HostKeyAlias cluster-key"], knownHosts: knownHosts)
        let result = try tether(["invoke", "--computer", "aliased", "--", "echo aliased"])
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        XCTAssertFalse(result.stderrText.contains("using OpenSSH"), "libssh2 honours HostKeyAlias: \(result.stderrText)")

        try addHost("unaliased", ["StrictHostKeyChecking yes"], knownHosts: knownHosts)
        XCTAssertEqual(try tether(["invoke", "--computer", "unaliased", "--", "true"]).status, .exited(255))
    }

    func testAskWithoutATerminalRefusesAndHashKnownHostsHashesWhatItAdds() throws {
        let empty = workDirectory + "/empty_known_hosts"
        try writeFile(empty, "")
        try addHost("asking", [], knownHosts: empty)  // StrictHostKeyChecking unset: ssh's ask
        let refused = try tether(["invoke", "--computer", "asking", "--", "true"])
        XCTAssertEqual(refused.status, .exited(255))
        XCTAssertTrue(refused.stderrText.contains("StrictHostKeyChecking is ask"), refused.stderrText)
        XCTAssertTrue(refused.stderrText.contains("no terminal to ask on"), refused.stderrText)

        let hashed = workDirectory + "/hashed_known_hosts"
        try writeFile(hashed, "")
        try addHost("hashing", ["StrictHostKeyChecking accept-new", "HashKnownHosts yes"], knownHosts: hashed)
        XCTAssertEqual(try check(["invoke", "--computer", "hashing", "--", "echo added"]), "added\n")
        let written = try String(contentsOfFile: hashed, encoding: .utf8)
        XCTAssertTrue(written.hasPrefix("|1|"), written)
        XCTAssertFalse(written.contains("127.0.0.1"), written)
        // ssh itself finds the hashed name.
        let ssh = try Processes.run("ssh-keygen", ["-F", "[127.0.0.1]:\(alpha.port)", "-f", hashed])
        XCTAssertEqual(ssh.status, .exited(0), ssh.stdoutText)
        // And the next connection (a new link) matches it.
        XCTAssertEqual(try tether(["invoke", "--computer", "hashing", "--", "true"], environment: ["TETHER_KEEPER": "0"]).status, .exited(0))
    }

    // MARK: Network and algorithms

    func testBindAddressIsTheSourceSSHDSees() throws {
        try addHost("bound", ["StrictHostKeyChecking yes", "BindAddress 127.0.0.2"])
        XCTAssertEqual(try check(["invoke", "--computer", "bound", "--", "echo bound"]), "bound\n")
        XCTAssertTrue(alpha.sshdLog.contains("Accepted publickey for \(alpha.user) from 127.0.0.2"), alpha.sshdLog)
    }

    func testCiphersAndMACsAreOffered() throws {
        let fixture = try SSHDFixture(SSHDFixture.Options(hostAlias: "picky",
                                                          sshdConfig: ["Ciphers aes128-ctr", "MACs hmac-sha2-256"]))
        addTeardownBlock { fixture.stop() }
        // A cipher the server doesn't allow: fails only because the line is honoured.
        try addHost("picky-wrong", ["StrictHostKeyChecking yes", "Ciphers aes192-ctr"], fixture: fixture)
        let refused = try tether(["invoke", "--computer", "picky-wrong", "--", "true"])
        XCTAssertEqual(refused.status, .exited(255))
        XCTAssertTrue(refused.stderrText.contains("key exchange failed"), refused.stderrText)
        try addHost("picky-mac", ["StrictHostKeyChecking yes", "MACs hmac-sha1"], fixture: fixture)
        XCTAssertEqual(try tether(["invoke", "--computer", "picky-mac", "--", "true"]).status, .exited(255))
        // The right ones work.
        try addHost("picky-right", ["StrictHostKeyChecking yes", "Ciphers aes256-ctr,aes128-ctr", "MACs +hmac-sha2-256"], fixture: fixture)
        XCTAssertEqual(try check(["invoke", "--computer", "picky-right", "--", "echo right"]), "right\n")
    }

    // MARK: The command line

    func testSSHFlagsAndASessionRemembersHowItWasReached() throws {
        // No config entry at all: everything comes from ssh-style flags.
        try writeFile(sshConfigPath, "")
        let flags = ["-p", String(alpha.port), "-l", alpha.user, "-i", alpha.clientKeyPath,
                     "-o", "UserKnownHostsFile=\(alpha.knownHostsPath)", "-o", "StrictHostKeyChecking=yes",
                     "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
        let printed = try check(["new", "127.0.0.1", "-G"] + flags)
        XCTAssertTrue(printed.contains("port \(alpha.port)\n"), printed)
        XCTAssertTrue(printed.contains("# tether transport: libssh2"), printed)

        _ = try check(["new", "127.0.0.1", "--name", "remembered"] + flags)
        // Later verbs, with no flags, connect the same way.
        XCTAssertEqual(try check(["invoke", "--name", "remembered", "--", "echo same way"]), "same way\n")
        let verbose = try tether(["invoke", "--name", "remembered", "-v", "--", "true"])
        XCTAssertEqual(verbose.status, .exited(0), verbose.stderrText)
        XCTAssertTrue(verbose.stderrText.contains("resolved by `ssh -G"), verbose.stderrText)
        XCTAssertTrue(verbose.stderrText.contains("keeper:"), verbose.stderrText)
        XCTAssertTrue(verbose.stderrText.contains("-p \(alpha.port)"), "the remembered port: \(verbose.stderrText)")
        // -G on the selector verbs: what the session's computer resolves to with the
        // remembered options, under this command line's, printed without connecting.
        XCTAssertTrue(try check(["invoke", "--name", "remembered", "-G", "--", "true"]).contains("port \(alpha.port)\n"))
        let unreachable = try closedLoopbackPort()
        for verb in [["receive", "--name", "remembered"], ["remove", "--name", "remembered"], ["job", "get"], ["get"]] {
            let shown = try tether(verb + ["-p", String(unreachable), "-G"])
            XCTAssertEqual(shown.status, .exited(0), "\(verb): \(shown.stderrText)")
            XCTAssertTrue(shown.stdoutText.contains("port \(unreachable)\n"), "\(verb): \(shown.stdoutText)")
            XCTAssertTrue(shown.stdoutText.contains("# tether transport: libssh2"), "\(verb): \(shown.stdoutText)")
        }
        let nothing = try tether(["disconnect", "--name", "no-such-session", "-G"])
        XCTAssertEqual(nothing.status, .exited(1), nothing.stderrText)
        XCTAssertTrue(nothing.stderrText.contains("no session in this client's list matches --name no-such-session"), nothing.stderrText)
        // The command line still wins: a wrong port now fails.
        let overridden = try tether(["invoke", "--name", "remembered", "-p", String(try closedLoopbackPort()), "--", "true"])
        XCTAssertEqual(overridden.status, .exited(255), overridden.stderrText)
        XCTAssertEqual(try check(["remove", "--name", "remembered"]), "")
    }

    func testVersionNamesReleaseAndProtocol() throws {
        let version = try check(["--version"])
        XCTAssertTrue(version.hasPrefix("tether "), version)
        XCTAssertTrue(version.contains("protocol \(tetherProtocolVersion), speaks \(ProtocolRange.ours)"), version)
        let subsystem = try Processes.run(alpha.subsystemPath, ["--version"])
        XCTAssertTrue(subsystem.stdoutText.contains("tether-subsystem"), subsystem.stdoutText)
        XCTAssertTrue(subsystem.stdoutText.contains("protocol \(tetherProtocolVersion), speaks \(ProtocolRange.ours)"), subsystem.stdoutText)
    }
}
