import Glibc
import TetherIO
import TetherTestSupport
import XCTest
@testable import TetherSSH

/// Every failure is specific and fast, and reaches onClose exactly once.
final class ConnectFailureTests: SSHFixtureTestCase {
    func testRefusedPortFailsFast() throws {
        var refused = target()
        refused.port = Int(try unusedPort())
        let probe = try assertFails(refused, kind: .connectionRefused, within: 1, messageContains: ["connection refused on port \(refused.port)"])
        print("refused: \(probe.error!)")
    }

    func testUnknownHostNameIsDNSFailure() throws {
        var nowhere = target()
        nowhere.hostName = "no-such-host.invalid"
        nowhere.alias = "nowhere"
        let probe = try assertFails(nowhere, kind: .dnsFailure, within: 10, messageContains: ["could not resolve host name 'no-such-host.invalid'"])
        XCTAssertTrue(probe.error!.description.hasPrefix("nowhere (no-such-host.invalid:"), probe.error!.description)
        print("dns: \(probe.error!)")
    }

    func testLocalhostTriesEachAddress() throws {
        // "localhost" may resolve to ::1 first, where this sshd doesn't listen.
        var local = target()
        local.hostName = "localhost"
        _ = try assertEchoWorks(local)
    }

    func testMissingSubsystemIsSubsystemUnavailable() throws {
        let probe = try assertFails(target(subsystem: "no-such-subsystem"), kind: .subsystemUnavailable, within: 5,
                                    messageContains: ["no `no-such-subsystem` subsystem", "scripts/install-host"])
        print("subsystem: \(probe.error!)")
    }

    func testSilentServerTimesOutWithinTheConnectTimeout() throws {
        // A listener that never accepts: TCP completes (backlog) but no SSH banner comes.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length); return getsockname(listener, $0, &length) }
        }
        XCTAssertEqual(listen(listener, 8), 0)
        var silent = target(timeout: 1)
        silent.port = Int(UInt16(bigEndian: address.sin_port))
        let probe = try assertFails(silent, kind: .timeout, within: 2, messageContains: ["timed out after 1 s while exchanging keys"])
        XCTAssertGreaterThanOrEqual(probe.closedAfter ?? 0, 0.9)
    }

    func testNotAnSSHServerIsDisconnectedDuringHandshake() throws {
        // Accept, send garbage, close: the handshake fails at once, not at the timeout.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length); return getsockname(listener, $0, &length) }
        }
        XCTAssertEqual(listen(listener, 8), 0)
        let harness = try ConnectionHarness()
        var http = target(timeout: 5)
        http.port = Int(UInt16(bigEndian: address.sin_port))
        let probe = harness.add(http)
        let registration = harness.reactor.register(fd: listener, interest: .readable) { _ in
            let peer = accept(listener, nil, nil)
            let reply = Array("HTTP/1.0 400 Bad Request\r\n\r\n".utf8)
            _ = reply.withUnsafeBytes { write(peer, $0.baseAddress, $0.count) }
            close(peer)
        }
        harness.run(timeout: 10)
        harness.reactor.unregister(registration)
        XCTAssertNotNil(probe.error)
        XCTAssertTrue(probe.error?.kind == .disconnected || probe.error?.kind == .libssh2, "\(String(describing: probe.error))")
        XCTAssertLessThan(probe.closedAfter ?? 99, 2)
        print("not ssh: \(probe.error!)")
    }

    func testCloseDuringSetupDeliversOneOnClose() throws {
        let harness = try ConnectionHarness()
        var connection: SSHConnection?
        let probe = harness.add(target(), onReady: { _, _ in XCTFail("should have been closed before ready") })
        connection = harness.connections.first?.0
        harness.reactor.schedule(after: 0.002) { connection?.close() }
        harness.run()
        XCTAssertEqual(probe.closeCount, 1)
        XCTAssertNil(probe.error)
    }

    private func unusedPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length); return getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }
}
