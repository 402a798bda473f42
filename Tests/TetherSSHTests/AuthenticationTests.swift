import Foundation
import Glibc
import TetherIO
import TetherTestSupport
import XCTest
@testable import TetherSSH

/// Identity files, encrypted keys, ssh-agent and refusal against a real sshd.
final class AuthenticationTests: SSHFixtureTestCase {
    func testWrongKeyIsAuthenticationFailedListingWhatWasTried() throws {
        let stranger = try makeKey("stranger", authorize: false)
        let probe = try assertFails(target(identities: [stranger, "\(scratch)/absent"]), kind: .authenticationFailed, within: 5,
                                    messageContains: ["Permission denied (publickey) for user '\(fixture.user)'", "tried: \(stranger) (ED25519)",
                                                      "skipped: \(scratch)/absent (no such file)"])
        print("wrong key: \(probe.error!)")
    }

    func testEncryptedKeyAsksThePassphraseProvider() throws {
        let key = try makeKey("locked", passphrase: "open sesame")
        _ = try assertEchoWorks(target(identities: [key]), passphrases: FixedPassphrases(answers: [key: "open sesame"]))

        let none = try assertFails(target(identities: [key]), kind: .authenticationFailed, within: 5,
                                   passphrases: FixedPassphrases(answers: [:]),
                                   messageContains: ["\(key) (encrypted, and no passphrase was given"])
        XCTAssertTrue(none.error!.message.contains("no key was offered"))

        _ = try assertFails(target(identities: [key]), kind: .authenticationFailed, within: 5,
                            passphrases: FixedPassphrases(answers: [key: "wrong"]),
                            messageContains: ["wrong passphrase"])
    }

    func testFIDOKeyIsSkippedNamingTheCauseAndSendsTheHostToOpenSSH() throws {
        let key = "\(scratch)/id_ed25519_sk"
        try Descriptors.writeFile(key, Self.securityKeyFile(), mode: 0o600)
        // libssh2 (forced): skipped with the cause, not libssh2's "invalid key file format".
        let probe = try assertFails(target(identities: [key]), kind: .authenticationFailed, within: 5,
                                    messageContains: ["\(key) (a FIDO/security key: libssh2 cannot use it"])
        XCTAssertFalse(probe.error!.message.contains("passphrase"), probe.error!.message)
        // Automatic transport: this host goes to OpenSSH's ssh, and the reason names the key.
        let reasons = LibSSH2Limits.reasons(target: target(identities: [key]), config: nil)
        XCTAssertTrue(reasons.contains { $0.contains("\(key) is a FIDO/security key (sk-ssh-ed25519@openssh.com)") }, "\(reasons)")
    }

    /// An unencrypted OpenSSH private key file of type sk-ssh-ed25519@openssh.com, as
    /// `ssh-keygen -t ed25519-sk` writes it (no security key needed to make one here).
    private static func securityKeyFile() -> String {
        func string(_ bytes: [UInt8]) -> [UInt8] {
            let n = UInt32(bytes.count)
            return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + bytes
        }
        let type = Array("sk-ssh-ed25519@openssh.com".utf8)
        let publicKey = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let application = Array("ssh:".utf8)
        let blob = string(type) + string(publicKey) + string(application)
        var secret: [UInt8] = [1, 2, 3, 4, 1, 2, 3, 4] + string(type) + string(publicKey) + string(application)
        secret += [0x01] + string((0..<16).map { _ in UInt8.random(in: 0...255) }) + string([]) + string(Array("fido".utf8))
        var padding: UInt8 = 1
        while secret.count % 8 != 0 { secret.append(padding); padding += 1 }
        let body = Array("openssh-key-v1".utf8) + [0] + string(Array("none".utf8)) + string(Array("none".utf8)) + string([])
            + [0, 0, 0, 1] + string(blob) + string(secret)
        return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + Data(body).base64EncodedString(options: .lineLength64Characters)
            + "\n-----END OPENSSH PRIVATE KEY-----\n"
    }

    func testIdentityFileWithoutPublicKeyFileWorks() throws {
        let key = try makeKey("bare")
        XCTAssertEqual(unlink(key + ".pub"), 0)
        _ = try assertEchoWorks(target(identities: [key]))
    }

    func testECDSAKeyWorks() throws {
        let key = try makeKey("ecdsa_key", type: "ecdsa")
        _ = try assertEchoWorks(target(identities: [key]))
    }

    func testRSAKeyIsSkippedWithAnExplanation() throws {
        let rsa = try makeKey("rsa_key", type: "rsa")
        if SSHLibrary.isAtLeast1_11 {
            // rsa-sha2 signatures: the key logs in by itself.
            _ = try assertEchoWorks(target(identities: [rsa]))
            return
        }
        let probe = try assertFails(target(identities: [rsa]), kind: .authenticationFailed, within: 5,
                                    messageContains: ["\(rsa) (RSA: libssh2", "SHA-1"])
        print("rsa: \(probe.error!)")
        // An RSA key next to a usable one doesn't get in the way.
        _ = try assertEchoWorks(target(identities: [rsa, fixture.clientKeyPath]))
    }

    func testAgentKeyIsUsedEvenWhenTheFileIsUnusable() throws {
        let agent = try SSHAgent(directory: scratch)
        defer { agent.stop() }
        let key = try makeKey("agent_only", passphrase: "agent secret")
        try agent.add(key, passphrase: "agent secret")
        XCTAssertEqual(unlink(key + ".pub"), 0)  // we read the public half from the key's header
        setenv("SSH_AUTH_SOCK", agent.socketPath, 1)
        defer { unsetenv("SSH_AUTH_SOCK") }

        // The file is encrypted and nobody tells us the passphrase: only the agent can sign.
        let noPassphrase = FixedPassphrases(answers: [:])
        _ = try assertEchoWorks(target(identities: [key], identitiesOnly: true), passphrases: noPassphrase)
        _ = try assertEchoWorks(target(identities: ["\(scratch)/absent"], identitiesOnly: false), passphrases: noPassphrase)

        // IdentitiesOnly with a file the agent doesn't hold: agent keys are not offered.
        let stranger = try makeKey("stranger", authorize: false)
        let probe = try assertFails(target(identities: [stranger], identitiesOnly: true), kind: .authenticationFailed,
                                    within: 5, passphrases: noPassphrase)
        XCTAssertFalse(probe.error!.message.contains("agent key"), probe.error!.message)
    }

    func testUnreachableAgentIsNotedNotFatal() throws {
        setenv("SSH_AUTH_SOCK", "\(scratch)/no-agent.sock", 1)
        defer { unsetenv("SSH_AUTH_SOCK") }
        _ = try assertEchoWorks(target(identitiesOnly: false))
        let stranger = try makeKey("stranger", authorize: false)
        _ = try assertFails(target(identities: [stranger], identitiesOnly: false), kind: .authenticationFailed, within: 5,
                            messageContains: ["ssh-agent at \(scratch)/no-agent.sock (cannot connect"])
    }
}

/// A private ssh-agent for one test.
final class SSHAgent {
    let socketPath: String
    private let pid: pid_t

    init(directory: String) throws {
        socketPath = directory + "/agent.sock"
        var options = Spawn.Options()
        options.devNull = [0, 1, 2]
        pid = try Spawn.spawn(path: try Processes.resolve("ssh-agent"), arguments: ["ssh-agent", "-D", "-a", socketPath], options: options)
        // ssh-agent has no readiness signal but its socket: wait for it to appear.
        let deadline = Deadline(secondsFromNow: 10)
        while access(socketPath, F_OK) != 0 {
            guard !deadline.hasPassed else { throw TestSupportError("ssh-agent did not create \(socketPath)") }
            usleep(5_000)
        }
    }

    /// ssh-add with the passphrase given through SSH_ASKPASS (no terminal in tests).
    func add(_ key: String, passphrase: String) throws {
        let askpass = socketPath + ".askpass"
        try Descriptors.writeFile(askpass, "#!/bin/sh\nprintf '%s\\n' '\(passphrase)'\n", mode: 0o700)
        let environment = Spawn.currentEnvironment().filter { !$0.hasPrefix("SSH_AUTH_SOCK=") && !$0.hasPrefix("DISPLAY=") }
            + ["SSH_AUTH_SOCK=\(socketPath)", "SSH_ASKPASS=\(askpass)", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=none"]
        let result = try Processes.run("ssh-add", [key], environment: environment)
        guard result.status == .exited(0) else { throw TestSupportError("ssh-add failed: \(result.stderrText)") }
    }

    func stop() {
        kill(pid, SIGTERM)
        _ = try? Processes.waitForChild(pid, timeout: 5)
    }
}
