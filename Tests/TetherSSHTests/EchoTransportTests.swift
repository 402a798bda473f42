import Glibc
import TetherIO
import TetherTestSupport
import XCTest
@testable import TetherSSH

/// Bytes through a real sshd's `echo` subsystem (/bin/cat) and back.
final class EchoTransportTests: SSHFixtureTestCase {
    func testSmallRoundTripAndTimings() throws {
        let harness = try ConnectionHarness()
        var connection: SSHConnection?
        let probe = harness.add(target(), onReady: { c, _ in
            connection = c
            c.write(Array("hello\n".utf8))
        }, onData: { c, probe in
            if probe.received.count >= 6 { c.close() }
        })
        harness.run()
        XCTAssertEqual(String(decoding: probe.received, as: UTF8.self), "hello\n")
        XCTAssertTrue(probe.closedCleanly)
        let timings = try XCTUnwrap(connection?.timings)
        print("SSH setup timings: \(timings)")
        XCTAssertGreaterThan(timings.handshake, 0)
        XCTAssertGreaterThan(timings.auth, 0)
        XCTAssertGreaterThan(timings.channel, 0)
        // Loopback with NODELAY + QUICKACK: the whole setup is tens of ms, not hundreds.
        XCTAssertLessThan(timings.total, 1000)
    }

    func testTenMegabytesBothWaysExceedingTheWindow() throws {
        let probe = try assertEchoWorks(target(), size: 10 << 20)
        XCTAssertEqual(probe.closeCount, 1)
    }

    func testManySmallWritesArriveInOrder() throws {
        let harness = try ConnectionHarness()
        var expected: [UInt8] = []
        for index in 0..<20_000 { expected += Array("line \(index)\n".utf8) }
        let probe = harness.add(target(), onReady: { c, _ in
            for index in 0..<20_000 { c.write(Array("line \(index)\n".utf8)) }
            XCTAssertGreaterThan(c.pendingWriteBytes, 0)
            c.sendEOF()
        })
        harness.run()
        XCTAssertNil(probe.error)
        XCTAssertTrue(probe.received == expected)
    }

    func testPauseReadingHoldsDataUntilResumed() throws {
        let harness = try ConnectionHarness()
        let payload = [UInt8](repeating: 0x61, count: 1 << 20)
        var pausedAt = -1
        let probe = harness.add(target(), onReady: { c, _ in
            c.write(payload)
            c.sendEOF()
        }, onData: { c, probe in
            guard pausedAt < 0 else {
                XCTAssertGreaterThanOrEqual(pausedAt, 0)
                return
            }
            pausedAt = probe.received.count
            c.pauseReading()
            // Nothing may arrive while paused; resume a little later.
            c.reactor.schedule(after: 0.2) {
                XCTAssertEqual(probe.received.count, pausedAt, "data arrived while paused")
                pausedAt = Int.max
                c.resumeReading()
            }
        })
        harness.run()
        XCTAssertNil(probe.error)
        XCTAssertEqual(probe.received.count, payload.count)
    }

    func testDrainedCallbackAndPendingBytes() throws {
        let harness = try ConnectionHarness()
        var drained = 0
        var connection: SSHConnection?
        harness.add(target(), onReady: { c, _ in
            connection = c
            c.onDrained = {
                drained += 1
                XCTAssertEqual(c.pendingWriteBytes, 0)
            }
            c.write([UInt8](repeating: 1, count: 100_000))
            XCTAssertEqual(c.pendingWriteBytes, 100_000)
        }, onData: { c, probe in
            if probe.received.count == 100_000 { c.close() }
        })
        harness.run()
        XCTAssertGreaterThanOrEqual(drained, 1)
        XCTAssertNotNil(connection)
    }

    func testRemoteEndIsCleanCloseAfterEOF() throws {
        let harness = try ConnectionHarness()
        let probe = harness.add(target(), onReady: { c, _ in c.sendEOF() })
        harness.run()
        // cat exits 0 on EOF: onClose(nil), exactly once.
        XCTAssertTrue(probe.closedCleanly, "\(String(describing: probe.error))")
    }

    func testKilledSubsystemIsReportedWithItsSignal() throws {
        let harness = try ConnectionHarness()
        let probe = harness.add(target(), onReady: { [fixture] c, _ in
            c.write(Array("x".utf8))
            _ = fixture
        }, onData: { [fixture] _, probe in
            guard probe.received.count == 1, let fixture else { return }
            let cats = ProcessTable.descendants(of: [fixture.sshdPID]).filter { $0.arguments.first == "/bin/cat" }
            XCTAssertEqual(cats.count, 1)
            cats.forEach { kill($0.pid, SIGKILL) }
        })
        harness.run()
        XCTAssertEqual(probe.error?.kind, .disconnected)
        XCTAssertTrue(probe.error?.message.contains("killed by signal KILL") == true, "\(String(describing: probe.error))")
    }

    func testKilledSSHDSessionIsDisconnected() throws {
        let harness = try ConnectionHarness()
        let probe = harness.add(target(), onReady: { [fixture] c, _ in
            guard let fixture else { return }
            // The per-connection sshd processes are sshd's children: kill them all, and
            // what they started. (An sshd not run as root has no privilege-separated
            // child: the session's program is the one left holding the connection's
            // socket, so killing the children alone would leave it open.)
            let sessions = ProcessTable.descendants(of: [fixture.sshdPID])
            XCTAssertFalse(sessions.isEmpty)
            sessions.forEach { kill($0.pid, SIGKILL) }
            c.write(Array("still there?".utf8))
        })
        harness.run()
        XCTAssertEqual(probe.error?.kind, .disconnected, "\(String(describing: probe.error))")
    }

    func testFiftyConcurrentConnectionsOnOneReactor() throws {
        let harness = try ConnectionHarness()
        let payload = (0..<65_536).map { UInt8(truncatingIfNeeded: $0) }
        let started = Reactor.now()
        let probes = (0..<50).map { _ in
            harness.add(target(), onReady: { c, _ in
                c.write(payload)
                c.sendEOF()
            })
        }
        harness.run(timeout: 60)
        let seconds = Double(Reactor.now() - started) / 1e9
        print("50 concurrent connections echoed 64 KiB each in \(seconds) s")
        for (index, probe) in probes.enumerated() {
            XCTAssertNil(probe.error, "connection \(index): \(String(describing: probe.error))")
            XCTAssertTrue(probe.received == payload, "connection \(index) echoed \(probe.received.count) bytes")
        }
    }
}
