import Glibc
import TetherIO
import TetherTestSupport
import XCTest
@testable import TetherSSH

/// What happened to one connection.
final class Probe {
    var ready = false
    var received: [UInt8] = []
    var closeCount = 0
    var error: SSHError?
    var notices: [String] = []
    var finished = false
    let started = Reactor.now()
    var readyAfter: Double?
    var closedAfter: Double?

    var closedCleanly: Bool { closeCount == 1 && error == nil }
}

/// Runs SSH connections on one Reactor on the test thread until all of them have fully
/// finished (teardown included), or a deadline.
final class ConnectionHarness {
    let reactor: Reactor
    private var unfinished = 0
    private(set) var connections: [(SSHConnection, Probe)] = []

    init() throws {
        reactor = try Reactor()
    }

    /// Starts a connection. `onReady`/`onData` run on the loop with the connection.
    @discardableResult
    func add(_ target: SSHTarget, passphrases: PassphraseProvider? = nil,
             onReady: @escaping (SSHConnection, Probe) -> Void = { connection, _ in connection.close() },
             onData: @escaping (SSHConnection, Probe) -> Void = { _, _ in }) -> Probe {
        let connection = SSHConnection(reactor: reactor, target: target)
        let probe = Probe()
        if let passphrases { connection.passphraseProvider = passphrases }
        connection.onNotice = { probe.notices.append($0) }
        connection.onFinished = { [unowned self] in
            probe.finished = true
            self.unfinished -= 1
            if self.unfinished == 0 { self.reactor.stop() }
        }
        unfinished += 1
        connections.append((connection, probe))
        connection.start(
            onReady: { [unowned connection] in
                probe.ready = true
                probe.readyAfter = Double(Reactor.now() - probe.started) / 1e9
                onReady(connection, probe)
            },
            onData: { [unowned connection] bytes in
                probe.received += bytes
                onData(connection, probe)
            },
            onClose: { error in
                probe.closeCount += 1
                probe.error = error
                probe.closedAfter = Double(Reactor.now() - probe.started) / 1e9
            })
        return probe
    }

    /// Runs the loop until every connection finished; fails the test after `timeout`.
    func run(timeout: Double = 60, file: StaticString = #filePath, line: UInt = #line) {
        guard unfinished > 0 else { return }
        var timedOut = false
        let timer = reactor.schedule(after: timeout) { [self] in
            timedOut = true
            for (connection, _) in connections where !connection.isClosed { connection.close() }
            // Teardowns are bounded (2 s); stop regardless after that.
            reactor.schedule(after: 3) { [self] in reactor.stop() }
        }
        reactor.run()
        reactor.cancel(timer)
        if timedOut {
            XCTFail("connections did not finish within \(timeout) s", file: file, line: line)
        }
        XCTAssertEqual(unfinished, 0, "connections still open", file: file, line: line)
        for (_, probe) in connections {
            XCTAssertLessThanOrEqual(probe.closeCount, 1, "onClose delivered more than once", file: file, line: line)
        }
    }
}

/// Shared test setup: a fresh sshd fixture and a scratch directory.
class SSHFixtureTestCase: XCTestCase {
    var fixture: SSHDFixture!
    var scratch = ""

    override func setUpWithError() throws {
        // Agent tests opt in; everything else must not depend on the developer's agent.
        unsetenv("SSH_AUTH_SOCK")
        fixture = try SSHDFixture()
        scratch = fixture.directory + "/ssh-tests"
        XCTAssertEqual(mkdir(scratch, 0o700), 0)
    }

    override func tearDown() {
        fixture?.stop()
        fixture = nil
    }

    /// The fixture's sshd with the echo subsystem (/bin/cat), our key, strict checking.
    func target(subsystem: String = "echo", knownHosts: [String]? = nil, policy: HostKeyPolicy = .yes,
                identities: [String]? = nil, identitiesOnly: Bool = true, timeout: Double = 10) -> SSHTarget {
        var target = SSHTarget(alias: "fixture", hostName: "127.0.0.1", port: Int(fixture.port), user: fixture.user,
                               identityFiles: identities ?? [fixture.clientKeyPath], identitiesOnly: identitiesOnly,
                               knownHostsFiles: knownHosts ?? [fixture.knownHostsPath],
                               strictHostKeyChecking: policy, connectTimeout: timeout, subsystem: subsystem)
        target.globalKnownHostsFiles = []
        return target
    }

    /// A new key pair in the scratch directory; returns the private key's path.
    func makeKey(_ name: String, type: String = "ed25519", passphrase: String = "", authorize: Bool = true) throws -> String {
        let path = "\(scratch)/\(name)"
        try Processes.check("ssh-keygen", ["-q", "-t", type, "-N", passphrase, "-C", name, "-f", path])
        if authorize {
            let publicKey = String(decoding: Descriptors.readFile(path + ".pub") ?? [], as: UTF8.self)
            let authorized = String(decoding: Descriptors.readFile(fixture.configuration.authorizedKeysPath) ?? [], as: UTF8.self)
            try Descriptors.writeFile(fixture.configuration.authorizedKeysPath, authorized + publicKey, mode: 0o600)
        }
        return path
    }

    func readText(_ path: String) -> String {
        String(decoding: Descriptors.readFile(path) ?? [], as: UTF8.self)
    }

    /// Connects, checks the echo subsystem echoes `size` bytes back, closes.
    func assertEchoWorks(_ target: SSHTarget, size: Int = 1000, passphrases: PassphraseProvider? = nil,
                         file: StaticString = #filePath, line: UInt = #line) throws -> Probe {
        let harness = try ConnectionHarness()
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let probe = harness.add(target, passphrases: passphrases, onReady: { connection, _ in
            connection.write(payload)
            connection.sendEOF()
        })
        harness.run(file: file, line: line)
        XCTAssertNil(probe.error, "\(probe.error.map { "\($0)" } ?? "")", file: file, line: line)
        XCTAssertTrue(probe.ready, file: file, line: line)
        XCTAssertEqual(probe.received.count, payload.count, file: file, line: line)
        XCTAssertTrue(probe.received == payload, "echoed bytes differ", file: file, line: line)
        return probe
    }

    func assertFails(_ target: SSHTarget, kind: SSHError.Kind, within seconds: Double = 15,
                     passphrases: PassphraseProvider? = nil, messageContains: [String] = [],
                     file: StaticString = #filePath, line: UInt = #line) throws -> Probe {
        let harness = try ConnectionHarness()
        let probe = harness.add(target, passphrases: passphrases, onReady: { connection, _ in connection.close() })
        harness.run(timeout: seconds + 5, file: file, line: line)
        XCTAssertFalse(probe.ready, "connected, but expected \(kind)", file: file, line: line)
        XCTAssertEqual(probe.closeCount, 1, file: file, line: line)
        XCTAssertEqual(probe.error?.kind, kind, "got: \(probe.error.map { "\($0)" } ?? "nil")", file: file, line: line)
        for text in messageContains {
            XCTAssertTrue(probe.error?.message.contains(text) == true,
                          "expected '\(text)' in: \(probe.error?.message ?? "nil")", file: file, line: line)
        }
        if let after = probe.closedAfter {
            XCTAssertLessThan(after, seconds, "failure took too long", file: file, line: line)
        }
        return probe
    }
}

/// Answers passphrase prompts from a table (never a terminal).
struct FixedPassphrases: PassphraseProvider {
    let answers: [String: String]
    func passphrase(for keyPath: String) -> String? { answers[keyPath] }
}
