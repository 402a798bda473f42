import XCTest
import TetherProtocol
@testable import TetherClient

/// The pieces a resume stands on, without a network: the delivered seq the output queue
/// keeps (what was handed over, acknowledged or not), and the lost-versus-failed errors.
final class ResumePointTests: XCTestCase {
    func testDeliveredSeqCountsWhatWasHandedOverIncludingMarkersNotWhatIsQueued() async throws {
        let queue = OutputQueue(pause: {}, requestResume: { _ in }, sendAck: { _ in })
        XCTAssertEqual(queue.lastDeliveredSeq, 0)
        queue.push(.init(seq: 5, chunk: nil, ackNow: false))              // commandStarted
        queue.push(.init(seq: 6, chunk: .stdout([1]), ackNow: false))
        queue.push(.init(seq: 7, chunk: .stdout([2]), ackNow: false))
        XCTAssertEqual(queue.lastDeliveredSeq, 0, "queued is not delivered")
        let first = try await queue.next()
        XCTAssertEqual(first, .stdout([1]))
        XCTAssertEqual(queue.lastDeliveredSeq, 6, "the marker before it and the chunk itself")
        queue.finish(.failure(TetherClientError(.connectionLost, host: "h", "reset")))
        let second = try await queue.next()
        XCTAssertEqual(second, .stdout([2]), "the rest comes before the error")
        XCTAssertEqual(queue.lastDeliveredSeq, 7)
        do {
            _ = try await queue.next()
            XCTFail("expected the loss")
        } catch let error as TetherClientError {
            XCTAssertTrue(error.isConnectionLost)
        }
        XCTAssertEqual(queue.lastDeliveredSeq, 7, "exact once the error is thrown")
    }

    func testAResumeStartsAfterWhatWasDeliveredEvenIfTheHostAckedLess() throws {
        let queue = OutputQueue(pause: {}, requestResume: { _ in }, sendAck: { _ in })
        queue.assumeDelivered(through: 40)
        queue.assumeDelivered(through: 12)
        XCTAssertEqual(queue.lastDeliveredSeq, 40)
        // The sequencer seeded with max(acked 12, delivered 40) drops the replay's overlap…
        var sequencer = RecordSequencer(after: max(12, 40), strict: true)
        XCTAssertEqual(try sequencer.check(13), .duplicate)
        XCTAssertEqual(try sequencer.check(40), .duplicate)
        XCTAssertEqual(try sequencer.check(41), .accept)
        // …and still refuses a gap.
        XCTAssertThrowsError(try sequencer.check(43))
    }

    func testOnlyALostConnectionIsResumable() {
        XCTAssertTrue(TetherClientError(.connectionLost, "x").isConnectionLost)
        XCTAssertTrue(TetherClientError(.connectionLost, "x").isConnectionLevel, "still exit 255")
        XCTAssertFalse(TetherClientError(.connection, "refused").isConnectionLost)
        XCTAssertFalse(TetherClientError(.remote(.sessionBroken), "broke").isConnectionLost)
        XCTAssertFalse(TetherClientError(.protocolViolation, "garbage").isConnectionLost)
    }
}
