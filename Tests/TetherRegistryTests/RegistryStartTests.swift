import Glibc
import TetherIO
import TetherProtocol
import XCTest

/// The registry is started on demand, exactly once, and stops cleanly.
final class RegistryStartTests: XCTestCase {
    private var host: TestHost!

    override func setUpWithError() throws { host = try TestHost() }
    override func tearDown() { host.tearDown() }

    func testSimultaneousFirstConnectionsStartExactlyOneRegistry() throws {
        let clients = try (0..<6).map { try host.subsystem(clientID: "client-\($0)", clientHost: "host-\($0)") }
        // Every one asks at once; each must find or start the registry.
        let ids = try clients.map { try $0.sendRequest(.ping) }
        for (client, id) in zip(clients, ids) {
            XCTAssertEqual(try client.awaitResponse(id: id), .pong)
        }
        let registries = host.registryPIDs()
        XCTAssertEqual(registries.count, 1, "registries running: \(registries)")
        XCTAssertEqual(host.registryPIDFromFile(), registries.first)
        XCTAssertEqual(host.log().components(separatedBy: "started the registry").count - 1, 1, host.log())
    }

    func testASecondRegistryExitsQuietly() throws {
        let client = try host.subsystem()
        XCTAssertEqual(try client.request(.ping), .pong)
        let first = try XCTUnwrap(host.registryPIDs().first)
        let second = try StdioSubsystem(binary: TestHost.binary,
                                        arguments: ["registry", "--runtime-dir", host.paths.runtimeDirectory,
                                                    "--state-dir", host.paths.stateDirectory],
                                        environment: [:], clientID: "-", clientHost: "-")
        XCTAssertEqual(try second.waitForExit(), .exited(0))
        XCTAssertEqual(host.registryPIDs(), [first])
        XCTAssertEqual(host.registryPIDFromFile(), first)
        XCTAssertEqual(try client.request(.ping), .pong)
    }

    func testRegistryStopsCleanlyOnSIGTERMAndIsStartedAgain() throws {
        let client = try host.subsystem()
        XCTAssertEqual(try client.request(.ping), .pong)
        let registry = try XCTUnwrap(host.registryPIDs().first)
        host.killAndWait(registry, signal: SIGTERM)
        XCTAssertTrue(host.registryPIDs().isEmpty)
        XCTAssertTrue(host.log().contains("stopping on SIGTERM"), host.log())
        XCTAssertNotEqual(access(host.paths.registrySocket, F_OK), 0, "socket should be removed")
        // The same subsystem connection notices and starts a new one on its next request.
        XCTAssertEqual(try client.request(.ping), .pong)
        let again = host.registryPIDs()
        XCTAssertEqual(again.count, 1)
        XCTAssertNotEqual(again.first, registry)
    }

    func testKilledRegistryIsRestartedByTheSameConnection() throws {
        let client = try host.subsystem()
        XCTAssertEqual(try client.request(.ping), .pong)
        let registry = try XCTUnwrap(host.registryPIDs().first)
        host.killAndWait(registry)
        // The stale socket is still there; the restart must clear it.
        XCTAssertEqual(access(host.paths.registrySocket, F_OK), 0)
        XCTAssertEqual(try client.request(.list(SessionFilter())), .sessions([]))
        XCTAssertEqual(host.registryPIDs().count, 1)
        XCTAssertNotEqual(host.registryPIDs().first, registry)
    }

    func testUnusableRuntimeDirectoryIsReported() throws {
        let client = try host.subsystem()
        XCTAssertEqual(try client.request(.ping), .pong)
        let registry = try XCTUnwrap(host.registryPIDs().first)
        host.killAndWait(registry)
        chmod(host.paths.runtimeDirectory, 0o755)
        defer { chmod(host.paths.runtimeDirectory, 0o700) }
        let response = try client.request(.ping)
        XCTAssertEqual(response.failure?.code, .unavailable)
        XCTAssertTrue(response.failure?.message.contains("accessible by other users") ?? false, "\(response)")
    }
}
