import XCTest
@testable import TetherProtocol

/// Record kinds 16–19 (protocol.md, "Records"): bodies as documented, through a frame.
final class StreamRecordCodingTests: XCTestCase {
    private func roundTrip(_ stream: StreamRecord, seq: UInt64 = 7) throws -> StreamRecord? {
        let record = Record(seq: seq, kind: stream.kind, body: stream.body)
        let decoded = try Record.decode(record.payload())
        XCTAssertEqual(decoded.seq, seq)
        XCTAssertTrue(decoded.kind.isOutput)
        return try StreamRecord(decoded)
    }

    func testEveryStreamSurvivesTheWire() throws {
        let all: [StreamRecord] = [
            .warning("disk at 91 % — ünïcode"), .verbose(""), .information("line one\nline two"),
            .progress(ProgressRecord(activity: "Copy files", status: "file 2 of 5", percent: 40)),
            .progress(ProgressRecord(activity: "Scan", status: "", percent: nil)),
            .progress(ProgressRecord(activity: "Copy files", percent: 100, completed: true)),
        ]
        for stream in all { XCTAssertEqual(try roundTrip(stream), stream) }
    }

    func testProgressBodyIsAsDocumented() {
        let body = StreamRecord.progress(ProgressRecord(activity: "Ab", status: "s", percent: nil, completed: true)).body
        XCTAssertEqual(body, [255, 1, 0, 0, 0, 2, UInt8(ascii: "A"), UInt8(ascii: "b"), UInt8(ascii: "s")])
    }

    func testABadProgressBodyIsRefused() {
        XCTAssertThrowsError(try StreamRecord(Record(seq: 1, kind: .progress, body: [101, 0, 0, 0, 0, 0])))
        XCTAssertThrowsError(try StreamRecord(Record(seq: 1, kind: .progress, body: [50, 0, 0, 0, 0, 9, 65])))
        XCTAssertNil(try StreamRecord(Record(seq: 1, kind: .stdout, body: [65])))
    }

    func testMarkersAreNotOutput() {
        for kind in [Record.Kind.commandStarted, .commandEnded, .dropped, .sessionClosed, .sessionBroken, .jobEnded, .jobCaughtUp] {
            XCTAssertFalse(kind.isOutput, "\(kind)")
        }
    }
}
