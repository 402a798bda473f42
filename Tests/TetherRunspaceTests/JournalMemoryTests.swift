import XCTest
import Foundation
import Glibc
import TetherProtocol

/// Issue 11 item 11: a runspace's memory stays within its buffer limit plus a small
/// constant — with the journal full and the command blocked, and while a reader replays
/// the journal and streams on. Measured as the kernel sees it: the runspace's anonymous
/// memory (heap, stacks), as MemoryTests does.
class JournalMemoryTestCase: RunspaceTestCase {
    var limit: Int { 16 << 20 }
    override var runspaceArguments: [String] { ["--output-buffering", "block", "--buffer-limit", "\(limit)"] }
    /// What the runspace may hold besides the journal's bytes: a read in progress, a
    /// connection's queue, the heap's slack.
    static let allowance = 2 << 20

    func anonymousBytes() throws -> Int {
        let text = try String(contentsOfFile: "/proc/\(runspace.pid)/smaps_rollup", encoding: .utf8)
        for line in text.split(separator: "\n") where line.hasPrefix("Anonymous:") {
            if let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) { return kib * 1024 }
        }
        throw RunspaceTestError("no Anonymous in smaps_rollup of \(runspace.pid)")
    }

    /// Bulk output: stdio's 4 KiB writes, read as whatever the pipe holds.
    static func bulk(_ total: Int) -> String { "seq 1 1000000000 | head -c \(total); echo" }
    /// A trickle: one write(2) per short line, read as tiny records.
    static func trickle(_ lines: Int) -> String { "for ((i = 0; i < \(lines); i++)); do echo $i; done" }

    func checkMemoryStaysBounded(_ command: String) throws {
        var invoker: RunspaceClient! = try runspace.attachedClient()
        XCTAssertEqual(try invoker.run("x=1").exitStatus, 0)
        let base = try anonymousBytes()
        guard case .success(let id) = try invoker.start(command) else { return XCTFail() }

        // Read what is sent without acknowledging: the journal fills to its limit, then
        // bash waits in write(2).
        var ended = false
        while let frame = try invoker.poll(timeout: 1, where: { $0.type == .record }) {
            if let record = try? Record.decode(frame.payload), record.kind == .commandEnded { ended = true }
        }
        XCTAssertFalse(ended, "the command is blocked, not finished")
        let blocked = try anonymousBytes() - base
        XCTAssertLessThanOrEqual(blocked, limit + Self.allowance,
                                 "blocked with a full journal: \(blocked >> 10) KiB above idle, limit \(limit >> 10) KiB")

        // The invoker goes (its client was killed); a reader comes: the journal is
        // replayed, then everything streams through it.
        invoker = nil
        let reader = try runspace.attachedClient(clientID: "client-b", channel: 2, receive: true)
        var peak = try anonymousBytes() - base
        var unacknowledged = 0
        var sinceSample = 0
        var streamed = 0
        while true {
            let record = try reader.nextRecord(channel: 2, timeout: 60)
            streamed += record.body.count
            // Acknowledged as a client does when it has caught up: often enough for a
            // journal of tiny records, whose cost counts too.
            unacknowledged += record.body.count + 256
            sinceSample += record.body.count + 1024  // tiny records are sampled too
            if unacknowledged >= 256 << 10 {
                reader.ack(record.seq, channel: 2)
                unacknowledged = 0
            }
            if sinceSample >= 8 << 20 {
                peak = max(peak, try anonymousBytes() - base)
                sinceSample = 0
            }
            if record.kind == .commandEnded, try record.commandID() == id {
                reader.ack(record.seq, channel: 2)
                break
            }
        }
        XCTAssertGreaterThan(streamed, limit)
        XCTAssertLessThanOrEqual(peak, limit + Self.allowance,
                                 "replaying and streaming \(streamed >> 20) MiB: peak \(peak >> 10) KiB above idle, limit \(limit >> 10) KiB")
        print("journal memory, limit \(limit >> 10) KiB: blocked +\(blocked >> 10) KiB, streaming peak +\(peak >> 10) KiB")
    }
}

final class JournalMemoryTests: JournalMemoryTestCase {
    func testSixteenMiBJournalBlockedAndReplayed() throws { try checkMemoryStaysBounded(Self.bulk(400 << 20)) }
}

final class SmallJournalMemoryTests: JournalMemoryTestCase {
    override var limit: Int { 1 << 20 }
    func testOneMiBJournalBlockedAndReplayed() throws { try checkMemoryStaysBounded(Self.bulk(200 << 20)) }
    func testOneMiBJournalOfTinyRecords() throws { try checkMemoryStaysBounded(Self.trickle(400_000)) }
}
