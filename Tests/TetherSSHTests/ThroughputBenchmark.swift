import Glibc
import TetherIO
import TetherTestSupport
import XCTest
@testable import TetherSSH

/// Echo throughput through sshd; runs only with TETHER_SSH_BENCH=1 (best with -c release):
///     TETHER_SSH_BENCH=1 swift test -c release --filter ThroughputBenchmark
final class ThroughputBenchmark: SSHFixtureTestCase {
    override func setUpWithError() throws {
        // Skip before the fixture starts an sshd for nothing.
        try XCTSkipUnless(Environment.get("TETHER_SSH_BENCH") == "1", "set TETHER_SSH_BENCH=1 to run")
        try super.setUpWithError()
    }

    func testEchoThroughput() throws {
        let total = (Int(Environment.get("TETHER_SSH_BENCH_MB") ?? "") ?? 256) << 20
        let chunk = [UInt8](repeating: 0x5a, count: 1 << 20)
        let harness = try ConnectionHarness()
        var sent = 0
        var received = 0
        var started: UInt64 = 0
        func feed(_ connection: SSHConnection) {
            // Keep ~8 MB queued: enough to fill the window, bounded memory.
            while sent < total && connection.pendingWriteBytes < 8 << 20 {
                connection.write(chunk)
                sent += chunk.count
            }
            if sent >= total { connection.sendEOF() }
        }
        let probe = harness.add(target(), onReady: { connection, _ in
            started = Reactor.now()
            connection.onDrained = { feed(connection) }
            feed(connection)
        }, onData: { _, probe in
            received += probe.received.count
            probe.received.removeAll(keepingCapacity: true)
        })
        harness.run(timeout: 300)
        let seconds = Double(Reactor.now() - started) / 1e9
        XCTAssertNil(probe.error)
        XCTAssertEqual(received, total)
        print("echo throughput: \(total >> 20) MiB each way in \(seconds) s = \(Double(total) / seconds / 1e6) MB/s each way")
    }
}
