import XCTest
import TetherProtocol
@testable import TetherRunspace

final class JournalTests: XCTestCase {
    private func output(_ journal: inout Journal, _ text: String) {
        journal.append(.stdout, body: Array(text.utf8))
    }

    func testSequenceNumbersStartAtOneAndAcksTrimTheHead() {
        var journal = Journal()
        output(&journal, "a")
        output(&journal, "bb")
        output(&journal, "ccc")
        XCTAssertEqual(journal.records.map(\.seq), [1, 2, 3])
        XCTAssertEqual(journal.unackedBytes, 6)
        XCTAssertTrue(journal.acknowledge(through: 2))
        XCTAssertEqual(journal.records.map(\.seq), [3])
        XCTAssertEqual(journal.unackedBytes, 3)
        XCTAssertFalse(journal.acknowledge(through: 1), "acks are monotonic")
        XCTAssertEqual(journal.ackedSeq, 2)
        XCTAssertTrue(journal.acknowledge(through: 99), "an ack past the end is clamped")
        XCTAssertEqual(journal.ackedSeq, 3)
        XCTAssertTrue(journal.isEmpty)
        XCTAssertEqual(journal.unackedBytes, 0)
        output(&journal, "d")
        XCTAssertEqual(journal.records.map(\.seq), [4], "a clamped ack never swallows later records")
    }

    func testCursorLookupFindsTheNextRecord() {
        var journal = Journal()
        for i in 0..<10 { output(&journal, "\(i)") }
        journal.acknowledge(through: 4)
        XCTAssertEqual(journal.first(atOrAfter: 1)?.seq, 5, "trimmed records are skipped")
        XCTAssertEqual(journal.first(atOrAfter: 7)?.seq, 7)
        XCTAssertNil(journal.first(atOrAfter: 11))
    }

    func testDropReplacesTheOldestOutputWithOneRecordAtTheGap() throws {
        var journal = Journal()
        journal.append(.commandStarted, body: Record.commandStarted(seq: 0, commandID: 1).body)  // 1
        for _ in 0..<5 { output(&journal, "0123456789") }                                       // 2…6
        // 8 (commandStarted) + 16 (the dropped record) + 2 × 10 left = 44
        let (bytes, records) = journal.dropOldestOutput(toFit: 44, sentThrough: 0)
        XCTAssertEqual(bytes, 30)
        XCTAssertEqual(records, 3)
        XCTAssertEqual(journal.records.map(\.seq), [1, 4, 5, 6], "the marker takes the last dropped seq")
        let marker = journal.records[journal.records.startIndex + 1]
        XCTAssertEqual(marker.kind, .dropped)
        XCTAssertEqual(try marker.droppedCounts().bytes, 30)
        XCTAssertEqual(try marker.droppedCounts().records, 3)
        XCTAssertEqual(journal.unackedBytes, 44)
    }

    func testUnsentDropMarkersCoalesceAndSentOnesStay() throws {
        var journal = Journal()
        for _ in 0..<4 { output(&journal, "0123456789") }  // 1…4
        journal.dropOldestOutput(toFit: 36, sentThrough: 0)  // a 16-byte marker + 2 × 10
        XCTAssertEqual(journal.records.map(\.seq), [2, 3, 4])
        output(&journal, "0123456789")  // 5
        journal.dropOldestOutput(toFit: 36, sentThrough: 0)
        let kinds = journal.records.map(\.kind)
        XCTAssertEqual(kinds.filter { $0 == .dropped }.count, 1, "one marker for a reader-less session: \(kinds)")
        let marker = try XCTUnwrap(journal.records.first)
        XCTAssertEqual(marker.kind, .dropped)
        let counts = try marker.droppedCounts()
        XCTAssertEqual(marker.seq - counts.records, 0, "the marker covers seqs 1…\(marker.seq)")

        // Once a marker has been sent, a later drop makes a new one instead of growing it.
        output(&journal, "0123456789")
        journal.dropOldestOutput(toFit: 36, sentThrough: marker.seq)
        XCTAssertEqual(journal.records.filter { $0.kind == .dropped }.count, 2)
    }

    func testDropKeepsCommandBoundaries() {
        var journal = Journal()
        journal.append(.commandStarted, body: Record.commandStarted(seq: 0, commandID: 1).body)
        output(&journal, String(repeating: "x", count: 100))
        journal.append(.commandEnded, body: Record.commandEnded(seq: 0, commandID: 1, exitStatus: 0).body)
        journal.dropOldestOutput(toFit: 10, sentThrough: 0)
        XCTAssertEqual(journal.records.map(\.kind), [.commandStarted, .dropped, .commandEnded])
    }
}
