import XCTest
import Foundation
import TetherIO
import TetherProtocol
@testable import TetherClient

/// The client's pure parts: resume rules, the consumer queue, relative state, and the
/// local session list under concurrent writers.
final class ClientUnitTests: XCTestCase {
    func testSequencerDropsReplaysAndRefusesGaps() throws {
        var sequencer = RecordSequencer(after: 5, strict: true)
        XCTAssertEqual(try sequencer.check(3), .duplicate)
        XCTAssertEqual(try sequencer.check(5), .duplicate)
        XCTAssertEqual(try sequencer.check(6), .accept)
        XCTAssertThrowsError(try sequencer.check(8)) { error in
            XCTAssertTrue("\(error)".contains("7…7 are missing"), "\(error)")
        }
        var relaxed = RecordSequencer(after: 5, strict: false)
        XCTAssertEqual(try relaxed.check(9), .accept)   // an invoke channel skips others' output
        relaxed.strict = true
        XCTAssertThrowsError(try relaxed.check(11))
    }

    func testDroppedRecordExplainsTheGapBeforeIt() throws {
        // drop buffering replaced records 2…9 by one `dropped` record at seq 9 (count 8).
        var sequencer = RecordSequencer(after: 1, strict: true)
        XCTAssertEqual(try sequencer.check(Record.dropped(seq: 9, bytes: 100, records: 8)), .accept)
        XCTAssertEqual(try sequencer.check(Record(seq: 10, kind: .stdout, body: [0x61])), .accept)
        // A count that does not reach back to the last seen record is still a gap.
        XCTAssertThrowsError(try sequencer.check(Record.dropped(seq: 20, bytes: 1, records: 2))) { error in
            XCTAssertTrue("\(error)".contains("11…18 are missing"), "\(error)")
        }
    }

    func testOutputQueueAcksOnlyWhatWasConsumedAndPausesWhenFull() async throws {
        let acks = AckLog()
        let pauses = AckLog()
        let queue = OutputQueue(
            pause: { pauses.append(1) },
            requestResume: { _ in pauses.append(0) },
            sendAck: { acks.append($0) })
        let chunk = [UInt8](repeating: 0x61, count: 64 * 1024)
        // Just above the high watermark (beyond the host's window, so only a host that
        // ignores flow control gets here): reading must pause; nothing acked yet.
        let total = OutputQueue.highWatermark / chunk.count + 2
        for seq in 1...total { queue.push(.init(seq: UInt64(seq), chunk: .stdout(chunk), ackNow: false)) }
        XCTAssertEqual(pauses.values, [1])
        XCTAssertEqual(acks.values, [])
        // Take 1 MiB: nothing acked while the consumer may still be printing the 16th.
        for _ in 0..<16 { _ = try await queue.next() }
        XCTAssertEqual(acks.values, [])
        // Back for the 17th: the 16 taken before are done with, one ack for exactly them.
        _ = try await queue.next()
        XCTAssertEqual(acks.values, [16])
        // Consume down to the low watermark: resume is requested once.
        let low = OutputQueue.lowWatermark / chunk.count
        for _ in 0..<(total - 17 - low) { _ = try await queue.next() }
        XCTAssertEqual(pauses.values, [1, 0])
        queue.push(.init(seq: UInt64(total + 1), chunk: nil, ackNow: true))   // command end
        queue.finish()
        var rest = 0
        while try await queue.next() != nil { rest += 1 }
        XCTAssertEqual(rest, low)
        XCTAssertEqual(acks.values.last, UInt64(total + 1))
    }

    func testOutputQueueDeliversInOrderToAWaitingConsumer() async throws {
        let queue = OutputQueue(pause: {}, requestResume: { _ in }, sendAck: { _ in })
        let consumer = Task { () -> [OutputChunk] in
            var got: [OutputChunk] = []
            while let chunk = try await queue.next() { got.append(chunk) }
            return got
        }
        queue.push(.init(seq: 1, chunk: nil, ackNow: false))
        queue.push(.init(seq: 2, chunk: .stdout([1]), ackNow: false))
        queue.push(.init(seq: 3, chunk: .stderr([2]), ackNow: false))
        queue.push(.init(seq: 4, chunk: .dropped(bytes: 10, records: 1), ackNow: false))
        queue.finish(.failure(TetherClientError(.connection, host: "h", "lost")))
        do {
            _ = try await consumer.value
            XCTFail("expected the error after the output")
        } catch let error as TetherClientError {
            XCTAssertEqual(error.description, "h: lost")
        }
    }

    /// On the loop a parked consumer is woken once per turn, after the turn queued every
    /// record it decoded (`wakeAfterTurn`), not once per record; it takes them in order
    /// and nothing is acknowledged before it took it.
    func testAWaitingConsumerIsWokenOncePerTurnWithAllTheTurnQueued() async throws {
        let turn = TurnLog()
        let acks = AckLog()
        let queue = OutputQueue(pause: {}, requestResume: { _ in }, sendAck: { acks.append($0) },
                                wakeAfterTurn: { turn.append($0) })
        let consumer = Task { () -> [OutputChunk] in
            var got: [OutputChunk] = []
            while let chunk = try await queue.next() { got.append(chunk) }
            return got
        }
        try await waitUntil { queue.consumerIsWaiting }
        queue.push(.init(seq: 1, chunk: nil, ackNow: false))   // a command's start: no wake-up
        XCTAssertEqual(turn.count, 0)
        XCTAssertEqual(acks.values, [1], "a marker alone is consumed at once, as before")
        queue.push(.init(seq: 2, chunk: .stdout([1]), ackNow: false))
        queue.push(.init(seq: 3, chunk: .stderr([2]), ackNow: false))
        queue.push(.init(seq: 4, chunk: .stdout([3]), ackNow: false))
        XCTAssertEqual(turn.count, 1, "one wake-up for the turn")
        XCTAssertTrue(queue.consumerIsWaiting, "nothing handed over before the turn ends")
        XCTAssertEqual(acks.values, [1], "no output acknowledged before it was taken")
        turn.runAll()
        try await waitUntil { queue.consumerIsWaiting }
        XCTAssertEqual(acks.values.last, 4, "caught up: everything taken is acknowledged")
        queue.push(.init(seq: 5, chunk: nil, ackNow: true))   // the command's end
        queue.finish()
        let got = try await consumer.value
        XCTAssertEqual(got, [.stdout([1]), .stderr([2]), .stdout([3])])
        XCTAssertEqual(acks.values.last, 5)
        XCTAssertEqual(turn.count, 1, "the end wakes the consumer itself")
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(10)
        while !condition() {
            guard Date() < deadline else { XCTFail("the consumer never parked"); throw CancellationError() }
            await Task.yield()
        }
    }

    func testRelativeStateFollowsPowerShell() {
        let me = "me", other = "other"
        func info(_ state: HostSessionState, holder: String?, busy: Bool = false) -> SessionInfo {
            SessionInfo(instanceID: "i", name: "n", configuration: "bash", state: state,
                        holder: holder.map { Holder(clientID: $0, clientHost: "\($0)-host", since: 0) },
                        busy: busy, createdAt: 0, lastUsedAt: 0, idleTimeout: 7200,
                        outputBuffering: .block, bufferLimit: 1 << 24)
        }
        func relative(_ i: SessionInfo) -> String {
            let (s, a) = SessionSummary.relativeState(of: i, clientID: me)
            return "\(s.rawValue)/\(a.rawValue)"
        }
        XCTAssertEqual(relative(info(.running, holder: me)), "Opened/Available")
        XCTAssertEqual(relative(info(.running, holder: me, busy: true)), "Opened/Busy")
        XCTAssertEqual(relative(info(.running, holder: other)), "Disconnected/Busy")
        XCTAssertEqual(relative(info(.running, holder: nil)), "Disconnected/None")
        XCTAssertEqual(relative(info(.closed, holder: nil)), "Closed/None")
        XCTAssertEqual(relative(info(.broken, holder: me)), "Broken/None")
        XCTAssertEqual(SessionSummary(info: info(.running, holder: other), computerName: "c", clientID: me).heldElsewhere?.clientHost, "other-host")
    }

    func testLocalIdsStayUniqueUnderConcurrentWriters() throws {
        var template = Array("/tmp/tether-home-XXXXXX".utf8CString)
        let directory = String(cString: try XCTUnwrap(mkdtemp(&template)))
        defer { _ = try? FileManager.default.removeItem(atPath: directory) }
        let home = ClientHome(directory: directory + "/home")
        let id = try home.clientID()
        XCTAssertEqual(try home.clientID(), id, "the client id is created once")

        DispatchQueue.concurrentPerform(iterations: 8) { writer in
            for n in 0..<20 {
                _ = try? home.sessions.record([(instanceID: "w\(writer)-\(n)", name: "s", computerName: "c", configuration: "bash")])
            }
        }
        let all = try home.sessions.all()
        XCTAssertEqual(all.count, 160)
        XCTAssertEqual(Set(all.map(\.id)), Set(1...160))
        // Recording a known session keeps its Id; forgetting never frees an Id.
        let again = try home.sessions.record([(instanceID: "w0-0", name: "renamed", computerName: "c", configuration: "bash")])
        XCTAssertEqual(again.first?.id, all.first { $0.instanceID == "w0-0" }?.id)
        try home.sessions.forget(instanceIDs: ["w0-0"])
        let fresh = try home.sessions.record([(instanceID: "new", name: "s", computerName: "c", configuration: "bash")])
        XCTAssertEqual(fresh.first?.id, 161)
    }

    func testSessionListIsReadByHandAndRewrittenOnlyWhenItChanges() throws {
        var template = Array("/tmp/tether-home-XXXXXX".utf8CString)
        let directory = String(cString: try XCTUnwrap(mkdtemp(&template)))
        defer { _ = try? FileManager.default.removeItem(atPath: directory) }
        let home = ClientHome(directory: directory + "/home")
        try home.prepare()
        // A file as JSONEncoder wrote it (pretty, sorted), with an escape and an unknown key.
        let written = #"""
            {
              "future" : [ { "x" : null } ],
              "nextID" : 8,
              "sessions" : [
                {
                  "computerName" : "web1",
                  "configuration" : "bash",
                  "id" : 3,
                  "instanceID" : "a1",
                  "name" : "de\\ploy \"x\" \u00e9"
                }
              ]
            }
            """#
        try Data(written.utf8).write(to: URL(fileURLWithPath: home.sessionsFile))
        XCTAssertEqual(try home.sessions.all(), [LocalSession(id: 3, instanceID: "a1", name: "de\\ploy \"x\" é",
                                                              computerName: "web1", configuration: "bash")])

        // Nothing new: the file is not rewritten (same inode, same bytes).
        func inode() throws -> UInt64 {
            try XCTUnwrap((try FileManager.default.attributesOfItem(atPath: home.sessionsFile))[.systemFileNumber] as? UInt64)
        }
        let before = try inode()
        let known = try home.sessions.record([(instanceID: "a1", name: "de\\ploy \"x\" é", computerName: "web1", configuration: "bash")])
        XCTAssertEqual(known.map(\.id), [3])
        XCTAssertEqual(try inode(), before)
        XCTAssertEqual(try String(contentsOfFile: home.sessionsFile, encoding: .utf8), written)
        // A new one is written, gets the next Id, and reads back.
        let new = try home.sessions.record([(instanceID: "b2", name: "n", computerName: "web2", configuration: "bash")])
        XCTAssertEqual(new.map(\.id), [8])
        XCTAssertNotEqual(try inode(), before)
        XCTAssertEqual(try home.sessions.all().map(\.id), [3, 8])

        // A damaged file is refused with a message that says where and what to do.
        try Data(#"{"nextID": 2, "sessions": [{"id": 1, "instanceID": "x""#.utf8).write(to: URL(fileURLWithPath: home.sessionsFile))
        XCTAssertThrowsError(try home.sessions.all()) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("client-sessions.json is damaged (session list: ends early"), message)
            XCTAssertTrue(message.contains("move it away"), message)
        }
    }
}

/// A thread-safe list for callbacks.
/// Work queued for "after the loop's turn", run when the test says the turn ended.
final class TurnLog: @unchecked Sendable {
    private let lock = Lock()
    private var queued: [@Sendable () -> Void] = []
    private var total = 0
    func append(_ body: @escaping @Sendable () -> Void) { lock.withLock { queued.append(body); total += 1 } }
    /// How many were ever queued.
    var count: Int { lock.withLock { total } }
    func runAll() {
        let work = lock.withLock { () -> [@Sendable () -> Void] in defer { queued = [] }; return queued }
        work.forEach { $0() }
    }
}

final class AckLog: @unchecked Sendable {
    private let lock = Lock()
    private var storage: [UInt64] = []
    func append(_ value: UInt64) { lock.withLock { storage.append(value) } }
    var values: [UInt64] { lock.withLock { storage } }
}

/// The keeper's log holds back a message repeated within a minute (a reconnect loop
/// dials every 50 ms) and still writes every new one.
final class KeeperLogTests: XCTestCase {
    func testRepeatsWithinTheWindowAreHeldBack() throws {
        let path = NSTemporaryDirectory() + "keeper-log-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(path) }
        do {
            let log = KeeperLog(path: path)
            for _ in 0..<100 {
                log.write("alpha: connecting to 127.0.0.1")
                log.write("alpha: link failed: connection refused")
            }
            log.write("alpha: link ready")
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3, lines.joined(separator: "\n"))
        XCTAssertTrue(lines[0].hasSuffix("alpha: connecting to 127.0.0.1"))
        XCTAssertTrue(lines[1].hasSuffix("alpha: link failed: connection refused"))
        XCTAssertTrue(lines[2].hasSuffix("alpha: link ready"))
    }
}
