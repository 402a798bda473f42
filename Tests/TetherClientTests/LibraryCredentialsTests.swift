import XCTest
import Foundation
import TetherClient
import TetherIO
import TetherProtocol
import TetherTestSupport

/// A program's own credentials for the SSH login (`ConnectionCredentials`), against the
/// real sshd fixture: private keys held in memory, a passphrase provider instead of the
/// terminal, and a host key decision for unknown and changed keys.
final class LibraryCredentialsTests: CLITestCase {
    private final class Asked: PassphraseProvider, @unchecked Sendable {
        private let lock = Lock()
        private var keys: [String] = []
        let answer: String?
        init(answer: String?) { self.answer = answer }
        func passphrase(for keyPath: String) -> String? {
            lock.withLock { keys.append(keyPath) }
            return answer
        }
        var asked: [String] { lock.withLock { keys } }
    }

    private final class Problems: @unchecked Sendable {
        private let lock = Lock()
        private var seen: [HostKeyProblem] = []
        func add(_ problem: HostKeyProblem) { lock.withLock { seen.append(problem) } }
        var all: [HostKeyProblem] { lock.withLock { seen } }
    }

    private func client() throws -> TetherClient {
        try TetherClient(home: ClientHome(directory: tetherHome), keeper: .never)
    }

    /// An ssh config for alpha with `replacements` applied, written to its own file.
    private func config(_ name: String, _ replacements: [(String, String)], extra: String = "") throws -> ConnectionOptions {
        var text = alpha.configuration.sshConfig
        for (old, new) in replacements { text = text.replacingOccurrences(of: old, with: new) }
        let path = workDirectory + "/ssh_config_\(name)"
        try writeFile(path, text + extra)
        return ConnectionOptions(configFile: path)
    }

    /// No identity file and no agent: only what the program hands over can log in.
    private func keylessOptions() throws -> ConnectionOptions {
        try config("keyless", [("IdentityFile \(alpha.configuration.clientKeyPath)", "IdentityFile \(workDirectory)/no-such-key")],
                   extra: "    IdentityAgent none\n")
    }

    private func runs(_ host: RemoteHost, file: StaticString = #filePath, line: UInt = #line) async throws {
        let session = try await host.createSession()
        let result = try await session.invoke("echo works").collect()
        XCTAssertEqual(String(decoding: result.stdout, as: UTF8.self), "works\n", file: file, line: line)
        try await host.remove(instanceID: session.instanceID)
    }

    private func expectConnectionError(_ what: String, _ body: () async throws -> RemoteHost) async -> TetherClientError? {
        do {
            let host = try await body()
            await host.close()
            XCTFail("\(what): connected")
            return nil
        } catch let error as TetherClientError {
            XCTAssertEqual(error.kind, .connection, "\(what): \(error)")
            return error
        } catch {
            XCTFail("\(what): \(error)")
            return nil
        }
    }

    func testAnInMemoryKeyLogsIn() async throws {
        let client = try client()
        let options = try keylessOptions()
        let refused = await expectConnectionError("no key at all") { try await client.connect("alpha", options: options) }
        XCTAssertTrue(refused?.message.lowercased().contains("permission denied") ?? false, "\(String(describing: refused))")

        let key = try XCTUnwrap(Descriptors.readFile(alpha.configuration.clientKeyPath))
        let host = try await client.connect("alpha", options: options,
                                            credentials: ConnectionCredentials(keys: [MemoryKey(label: "test key", privateKey: key)]))
        try await runs(host)
        await host.close()

        // OpenSSH's ssh can't call back into this process: said, not silently ignored.
        var forced = options
        forced.transport = .openssh
        do {
            _ = try await client.connect("alpha", options: forced,
                                         credentials: ConnectionCredentials(keys: [MemoryKey(privateKey: key)]))
            XCTFail("credentials over the OpenSSH transport")
        } catch let error as TetherClientError {
            XCTAssertEqual(error.kind, .usage)
            XCTAssertTrue(error.message.contains("libssh2 transport only"), error.message)
        }
    }

    func testEncryptedKeysAskTheProgramsPassphraseProvider() async throws {
        let keyPath = workDirectory + "/encrypted"
        try Processes.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "pass phrase", "-f", keyPath])
        let publicKey = String(decoding: try XCTUnwrap(Descriptors.readFile(keyPath + ".pub")), as: UTF8.self)
        let authorized = String(decoding: Descriptors.readFile(alpha.configuration.authorizedKeysPath) ?? [], as: UTF8.self)
        try writeFile(alpha.configuration.authorizedKeysPath, authorized + publicKey)
        let client = try client()
        let options = try keylessOptions()
        let key = try XCTUnwrap(Descriptors.readFile(keyPath))

        // In memory, encrypted, no passphrase given: the provider is asked, by the key's label.
        let right = Asked(answer: "pass phrase")
        let host = try await client.connect("alpha", options: options, credentials: ConnectionCredentials(
            passphrases: right, keys: [MemoryKey(label: "vault key", privateKey: key)]))
        try await runs(host)
        await host.close()
        XCTAssertEqual(right.asked, ["vault key"])

        let wrong = Asked(answer: "not it")
        let refused = await expectConnectionError("wrong passphrase") {
            try await client.connect("alpha", options: options, credentials: ConnectionCredentials(
                passphrases: wrong, keys: [MemoryKey(label: "vault key", privateKey: key)]))
        }
        XCTAssertTrue(refused?.message.contains("vault key") ?? false, "\(String(describing: refused))")

        // The same key as an identity file: the provider is asked for its path.
        var fileOptions = options
        fileOptions.identityFiles = [keyPath]
        let forFile = Asked(answer: "pass phrase")
        let viaFile = try await client.connect("alpha", options: fileOptions, credentials: ConnectionCredentials(passphrases: forFile))
        try await runs(viaFile)
        await viaFile.close()
        XCTAssertEqual(forFile.asked, [keyPath])
    }

    func testTheProgramDecidesAboutUnknownAndChangedHostKeys() async throws {
        let client = try client()
        let knownHosts = workDirectory + "/known_hosts_empty"
        try writeFile(knownHosts, "")
        let options = try config("unknown", [(alpha.configuration.knownHostsPath, knownHosts)])

        let problems = Problems()
        let refused = await expectConnectionError("rejected") {
            try await client.connect("alpha", options: options, credentials: ConnectionCredentials(hostKeyDecision: { problem in
                problems.add(problem)
                return .reject
            }))
        }
        XCTAssertTrue(refused?.message.contains("refused") ?? false, "\(String(describing: refused))")
        let unknown = try XCTUnwrap(problems.all.first)
        XCTAssertEqual(unknown.kind, .unknown)
        XCTAssertEqual(unknown.hostName, "[127.0.0.1]:\(alpha.port)")
        XCTAssertTrue(unknown.fingerprint.hasPrefix("SHA256:"), unknown.fingerprint)
        XCTAssertEqual(String(decoding: Descriptors.readFile(knownHosts) ?? [], as: UTF8.self), "", "nothing recorded")

        let recorded = try await client.connect("alpha", options: options, credentials: ConnectionCredentials(hostKeyDecision: { _ in .acceptAndRecord }))
        await recorded.close()
        XCTAssertTrue(String(decoding: Descriptors.readFile(knownHosts) ?? [], as: UTF8.self).contains("[127.0.0.1]:\(alpha.port) "))
        // Recorded: StrictHostKeyChecking yes now lets it in without any decision.
        let plain = try await client.connect("alpha", options: options)
        await plain.close()

        // A known_hosts that lists another key for the host: the program is asked too.
        let impostorPath = workDirectory + "/impostor"
        try Processes.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", impostorPath])
        let impostor = String(decoding: try XCTUnwrap(Descriptors.readFile(impostorPath + ".pub")), as: UTF8.self)
        let wrongHosts = workDirectory + "/known_hosts_wrong"
        try writeFile(wrongHosts, alpha.configuration.knownHosts(publicKeys: [impostor]))
        let changedOptions = try config("changed", [(alpha.configuration.knownHostsPath, wrongHosts)])
        _ = await expectConnectionError("changed key, no decision") { try await client.connect("alpha", options: changedOptions) }
        let changes = Problems()
        let accepted = try await client.connect("alpha", options: changedOptions, credentials: ConnectionCredentials(hostKeyDecision: { problem in
            changes.add(problem)
            return .accept
        }))
        try await runs(accepted)
        await accepted.close()
        let changed = try XCTUnwrap(changes.all.first)
        XCTAssertEqual(changed.kind, .changed)
        XCTAssertTrue(changed.knownEntry?.hasPrefix(wrongHosts + ":") ?? false, "\(changed)")
    }
}
