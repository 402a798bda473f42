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
        // What one more idle session costs the host is the memory it dirtied itself: the
        // binary's and libc's pages are page cache shared with every other process that
        // maps them. PSS depends on what else runs right now (over 100 sessions
        // scripts/bench measures ~1.4 MiB), and so does Private_Clean: the statically
        // linked runspace binary is "private" while it is the only process mapping it,
        // as in this test, and shared from the second session on.
        let dirty = try kibibytes("Private_Dirty", of: runspace.pid) + kibibytes("Private_Dirty", of: bash)
        XCTAssertLessThanOrEqual(dirty, 8 * 1024, "runspace + bash private dirty memory \(dirty) KiB")
    }
}
