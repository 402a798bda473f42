import XCTest
import Foundation
import TetherProtocol

/// An idle session must stay cheap (≤ 8 MiB PSS with its bash), also after a burst.
final class MemoryTests: RunspaceTestCase {
    /// A smaps_rollup field of `pid`, in KiB.
    private func kibibytes(_ field: String, of pid: pid_t) throws -> Int {
        let text = try String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8)
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            if let value = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) { return value }
        }
        throw RunspaceTestError("no \(field) in smaps_rollup of \(pid)")
    }

    func testIdleSessionIsSmallAgainAfterABurstOfOutput() throws {
        let client = try runspace.attachedClient()
        XCTAssertEqual(try client.run("x=1").exitStatus, 0)
        let bash = try runspace.bashPID()
        let anonymousBefore = try kibibytes("Anonymous", of: runspace.pid)

        guard case .success(let id) = try client.start("head -c 30000000 /dev/zero") else { return XCTFail() }
        let burst = try client.collect(commandID: id, every: 1 << 20, timeout: 60)
        XCTAssertEqual(burst.stdout.count, 30_000_000)
        // The heap is handed back a moment after the journal empties.
        Thread.sleep(forTimeInterval: 1.5)

        let anonymousAfter = try kibibytes("Anonymous", of: runspace.pid)
        XCTAssertLessThan(anonymousAfter, anonymousBefore + 1024,
                          "anonymous memory \(anonymousBefore) KiB before, \(anonymousAfter) KiB after 30 MB")
        // What one more idle session costs the host is its anonymous memory: heap, stacks,
        // and the pages it copied on write (relocated data). File pages — the binary, libc —
        // are page cache shared with every process that maps them. Neither PSS nor the
        // Private_* fields say that here: PSS depends on what else runs right now (alone
        // in a test run ~8.5 MiB; over 100 sessions scripts/bench measures ~1.4 MiB), and a
        // binary linked a moment ago counts as Private_Dirty while its page cache has not
        // been written back and this is the only process mapping it.
        let anonymous = try kibibytes("Anonymous", of: runspace.pid) + kibibytes("Anonymous", of: bash)
        XCTAssertLessThanOrEqual(anonymous, 8 * 1024, "runspace + bash anonymous memory \(anonymous) KiB")
    }
}
