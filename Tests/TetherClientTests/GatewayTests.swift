import XCTest
import Foundation
import Glibc
import TetherClient
import TetherIO
import TetherProtocol
import TetherTestSupport

/// The gateway: once a host's hello has named its gateway socket, connecting again opens
/// an OpenSSH `direct-streamlocal@openssh.com` channel straight to it — sshd starts no
/// subsystem and no login shell — and falls back to the subsystem whenever that way is
/// shut (registry gone, forwarding disabled). Real sshd, real registry, library API.
final class GatewayTests: TwoClientTestCase {
    private func client() throws -> TetherClient {
        try TetherClient(home: ClientHome(directory: tetherHome), keeper: .never)
    }

    private var options: ConnectionOptions { ConnectionOptions(configFile: sshConfigPath) }

    /// sshd's own count of subsystem starts (it logs each at LogLevel VERBOSE).
    private func subsystemStarts(_ computer: SSHDFixture) -> Int {
        computer.sshdLog.components(separatedBy: "Starting session: subsystem 'tether'").count - 1
    }

    private func run(_ script: String, in session: RemoteSession) async throws -> String {
        let result = try await session.invoke(script).collect()
        XCTAssertEqual(result.exitStatus, 0, String(decoding: result.stderr, as: UTF8.self))
        return String(decoding: result.stdout, as: UTF8.self)
    }

    func testAReconnectGoesStraightToTheGatewayAndFindsTheSameSessions() async throws {
        let client = try client()
        let first = try await client.connect("alpha", options: options)
        XCTAssertEqual(first.route, .subsystem, "the first connection knows no gateway yet")
        XCTAssertEqual(first.hostHello.gateway, alpha.runtimeDirectory + "/gateway.sock")
        let session = try await first.createSession(name: "g")
        let defined = try await run("x=41; f() { echo $((x + 1)); }", in: session)
        XCTAssertEqual(defined, "")
        await first.close()
        XCTAssertEqual(subsystemStarts(alpha), 1)

        let second = try await first.reconnect()
        XCTAssertEqual(second.route, .gateway)
        XCTAssertEqual(subsystemStarts(alpha), 1, "sshd started no subsystem for the gateway channel")
        let found = try await second.sessions(filter: SessionFilter(name: "g"))
        XCTAssertEqual(found.map(\.instanceID), [session.instanceID])
        let output = try await run("f", in: second.session(instanceID: session.instanceID, name: "g"))
        XCTAssertEqual(output, "42\n")
        XCTAssertTrue(alpha.hostLog.contains("connected through the gateway"), alpha.hostLog)

        // Again from the gateway connection: it names the gateway too.
        await second.close()
        let third = try await second.reconnect()
        XCTAssertEqual(third.route, .gateway)
        try await third.ping()
        await third.close()
    }

    func testAGatewayWhoseRegistryWasKilledFallsBackToTheSubsystem() async throws {
        let client = try client()
        let first = try await client.connect("alpha", options: options)
        let session = try await first.createSession(name: "kept")
        _ = try await run("y=7", in: session)
        await first.close()
        let registry = try XCTUnwrap(alpha.registryPID())
        kill(registry, SIGKILL)
        try waitUntil("the registry is gone") { kill(registry, 0) != 0 }
        XCTAssertTrue(FileManager.default.fileExists(atPath: alpha.runtimeDirectory + "/gateway.sock"),
                      "a killed registry leaves its socket behind, with nobody listening")

        let second = try await first.reconnect()
        XCTAssertEqual(second.route, .subsystem, "sshd could not connect the stale socket; the subsystem took over")
        let output = try await run("echo $y", in: second.session(instanceID: session.instanceID))
        XCTAssertEqual(output, "7\n")
        await second.close()

        // The subsystem started a new registry, which listens on the gateway again.
        let third = try await second.reconnect()
        XCTAssertEqual(third.route, .gateway)
        let again = try await run("echo $y", in: third.session(instanceID: session.instanceID))
        XCTAssertEqual(again, "7\n")
        await third.close()
    }

    func testAHostThatForbidsStreamLocalForwardingIsReachedThroughTheSubsystem() async throws {
        let shut = try SSHDFixture(SSHDFixture.Options(hostAlias: "shut", sshdConfig: ["AllowStreamLocalForwarding no"]))
        defer { shut.stop() }
        let config = workDirectory + "/ssh_config_shut"
        try writeFile(config, shut.configuration.sshConfig)
        let client = try client()
        let first = try await client.connect("shut", options: ConnectionOptions(configFile: config))
        let session = try await first.createSession(name: "s")
        _ = try await run("z=3", in: session)
        await first.close()

        let second = try await first.reconnect()
        XCTAssertEqual(second.route, .subsystem)
        let output = try await run("echo $z", in: second.session(instanceID: session.instanceID))
        XCTAssertEqual(output, "3\n")
        await second.close()
        XCTAssertEqual(subsystemStarts(shut), 2)
        XCTAssertTrue(shut.sshdLog.contains("refused streamlocal port forward"), "sshd said no, and we asked")
    }
}
