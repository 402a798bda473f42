import XCTest
import TetherProtocol

final class BlockBufferingTests: RunspaceTestCase {
    override var runspaceArguments: [String] { ["--output-buffering", "block", "--buffer-limit", "100000"] }

    func testFullJournalHoldsTheCommandUntilAcks() throws {
        let client = try runspace.attachedClient()
        let total = 2_000_000
        guard case .success(let id) = try client.start("head -c \(total) /dev/zero; echo finished >&2") else { return XCTFail() }
        // Read without acknowledging: output stops near the limit and the command can't end.
        var received = 0
        var lastSeq: UInt64 = 0
        while let frame = try client.poll(timeout: 1, where: { $0.type == .record }) {
            let record = try Record.decode(frame.payload)
            XCTAssertNotEqual(record.kind, .commandEnded, "ended with unacknowledged output over the limit")
            if record.kind == .stdout { received += record.body.count }
            lastSeq = record.seq
        }
        XCTAssertGreaterThan(received, 0)
        XCTAssertLessThanOrEqual(received, 100_000 + 2 * Record.maxDataLength, "held back near the limit")
        // Acknowledging lets it go on, to the end, losing nothing.
        client.ack(lastSeq, channel: 1)
        var stdout = received
        var stderr = ""
        while true {
            let record = try client.nextRecord(channel: 1)
            switch record.kind {
            case .stdout: stdout += record.body.count
            case .stderr: stderr += String(decoding: record.body, as: UTF8.self)
            case .commandEnded:
                XCTAssertEqual(try record.commandID(), id)
                XCTAssertEqual(stdout, total)
                XCTAssertEqual(stderr, "finished\n")
                return
            default: break
            }
            client.ack(record.seq, channel: 1)
        }
    }
}

final class DropBufferingTests: RunspaceTestCase {
    override var runspaceArguments: [String] { ["--output-buffering", "drop", "--buffer-limit", "100000"] }

    func testOutputNobodyReadsIsDroppedAndReported() throws {
        let invoker = try runspace.attachedClient()
        let script = "sleep 0.5; head -c 1000000 /dev/zero | tr '\\0' x; echo end"
        guard case .success(let id) = try invoker.start(script) else { return XCTFail() }
        let detach = invoker.request(.detach, channel: 1)
        XCTAssertEqual(try invoker.response(to: detach, channel: 1), .done)
        // Let the command run to its end with nobody attached.
        let registry = try runspace.connect(role: .registry)
        while true {
            let frame = try registry.next(timeout: 20) { $0.type == .event }
            if case .status(let status) = try WireJSON.decode(Event.self, from: frame.payload), !status.busy,
               status.attachments == 0 { break }
        }

        let receiver = try runspace.connect(clientID: "client-a")
        let info = try receiver.attach(channel: 2, instanceID: runspace.instanceID, receive: true)
        var previous = info.ackedSeq
        var stdout = 0
        var droppedBytes: UInt64 = 0
        var sawEnd = false
        while previous < info.lastSeq {
            let record = try receiver.nextRecord(channel: 2)
            if record.kind == .dropped {
                let counts = try record.droppedCounts()
                droppedBytes += counts.bytes
                XCTAssertGreaterThanOrEqual(previous, record.seq - counts.records, "the dropped record covers the gap")
            } else {
                XCTAssertEqual(record.seq, previous + 1, "a gap only right before a dropped record")
            }
            if record.kind == .stdout { stdout += record.body.count }
            if record.kind == .commandEnded { sawEnd = try record.commandID() == id }
            previous = record.seq
        }
        XCTAssertTrue(sawEnd)
        XCTAssertGreaterThan(droppedBytes, 0)
        XCTAssertEqual(UInt64(stdout) + droppedBytes, 1_000_004, "everything is either delivered or reported")
        XCTAssertLessThanOrEqual(stdout, 100_000)
    }
}
