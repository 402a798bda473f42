import XCTest
import TetherProtocol

/// Sequence/ack resume: what a `receive` gets after a reconnect.
final class ReplayTests: RunspaceTestCase {
    /// Reads records on `channel` until `stop` says so.
    private func records(_ client: RunspaceClient, channel: UInt32, until stop: (Record) -> Bool) throws -> [Record] {
        var result: [Record] = []
        while true {
            let record = try client.nextRecord(channel: channel)
            result.append(record)
            if stop(record) { return result }
        }
    }

    func testReceiveReplaysUnacknowledgedRecordsExactlyOnceInOrder() throws {
        var first: RunspaceClient? = try runspace.attachedClient()
        guard case .success(let id) = try first!.start("for i in 1 2 3; do echo line $i; echo err $i >&2; done") else { return XCTFail() }
        let seen = try first!.collect(commandID: id, acknowledge: false)
        XCTAssertEqual(seen.stdoutText, "line 1\nline 2\nline 3\n")
        // Acknowledge only the first half, then vanish without a word.
        let half = seen.records[seen.records.count / 2].seq
        first!.ack(half, channel: 1)
        // Frames are handled in order: once this invoke is answered, the ack has been.
        guard case .success(let next) = try first!.start("true") else { return XCTFail() }
        let nextRecords = try first!.collect(commandID: next, acknowledge: false).records
        first = nil  // …and then the connection just drops.

        let second = try runspace.connect(clientID: "client-a")
        let info = try second.attach(channel: 5, instanceID: runspace.instanceID, receive: true)
        XCTAssertGreaterThanOrEqual(info.ackedSeq, half)
        XCTAssertNil(info.runningCommandID)
        let replay = try records(second, channel: 5) { $0.seq == info.lastSeq }
        let expected = (seen.records + nextRecords).filter { $0.seq > half }
        XCTAssertEqual(replay, expected, "unacknowledged records, in order")
        let seqs = replay.map(\.seq)
        XCTAssertEqual(seqs, Array((info.ackedSeq + 1)...info.lastSeq), "each once, no gap")

        // Then live output follows on the same channel, with no repeat.
        let live = try second.run("echo live", channel: 5)
        XCTAssertEqual(live.stdoutText, "live\n")
        XCTAssertEqual(live.records.first!.seq, info.lastSeq + 1)
    }

    func testReceiveFollowsARunningCommandAndSeesBackgroundOutput() throws {
        let invoker = try runspace.attachedClient()
        XCTAssertEqual(try invoker.run("(sleep 0.5; echo from-background) &").exitStatus, 0)
        guard case .success(let id) = try invoker.start("echo one; sleep 1; echo two") else { return XCTFail() }
        let receiver = try runspace.connect(clientID: "client-a")
        let info = try receiver.attach(channel: 2, instanceID: runspace.instanceID, receive: true)
        XCTAssertEqual(info.runningCommandID, id)
        let got = try records(receiver, channel: 2) { $0.kind == .commandEnded }
        let text = got.filter { $0.kind == .stdout }.map { String(decoding: $0.body, as: UTF8.self) }.joined()
        XCTAssertTrue(text.hasSuffix("one\nfrom-background\ntwo\n") || text.hasSuffix("from-background\none\ntwo\n"), text)
        let seqs = got.map(\.seq)
        XCTAssertEqual(seqs, Array(seqs[0]...seqs.last!), "no gap")
        XCTAssertEqual(try invoker.collect(commandID: id).stdoutText, "one\nfrom-background\ntwo\n",
                       "the invoker gets its command's records, background output meanwhile included")
    }

    func testBackgroundOutputBetweenCommandsWaitsForAReceiver() throws {
        let invoker = try runspace.attachedClient()
        XCTAssertEqual(try invoker.run("(sleep 0.3; echo late) &").exitStatus, 0)
        XCTAssertNil(try invoker.poll(timeout: 1) { $0.type == .record }, "not for an invoke channel")
        let receiver = try runspace.connect(clientID: "client-a")
        let info = try receiver.attach(channel: 9, instanceID: runspace.instanceID, receive: true)
        let replay = try records(receiver, channel: 9) { $0.seq == info.lastSeq }
        XCTAssertEqual(replay.last?.kind, .stdout)
        XCTAssertEqual(String(decoding: replay.last!.body, as: UTF8.self), "late\n")
    }
}
