import XCTest
import Glibc
import TetherIO
import TetherProtocol
import TetherTestSupport

/// Lossless output across real network faults: OpenSSH to the fixture's sshd goes through
/// a `TCPProxy` that resets the TCP connection (`cut`) or freezes it (`stall`) while a
/// command streams numbered lines. The client keeps what it received, reconnects with the
/// same client id, attaches with `receive`, and must end up with every line exactly once,
/// in order, under contiguous sequence numbers — the replay overlapping what it had must
/// be byte-identical, and nothing may be skipped.
final class LinkFaultTests: HostTestCase {
    private static let lineCount = 200
    /// About 2 s of output (200 × 10 ms plus a process per sleep), so faults land mid-way.
    private static let script = "for i in $(seq 1 \(lineCount)); do echo \"line $i\"; sleep 0.01; done"
    private static let expected = (1...lineCount).map { "line \($0)\n" }.joined()

    private var proxy: TCPProxy!
    private var proxied: [ProtocolTestClient] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        proxy = try TCPProxy(targetPort: host.port)
    }

    override func tearDown() {
        if let run = testRun, run.totalFailureCount > 0 {
            print("---- proxy: \(proxy.map { "\($0.statistics)" } ?? "-")")
            for client in proxied where !client.stderrText.isEmpty { print("---- ssh via proxy \(client.pid) stderr:\n\(client.stderrText)") }
        }
        proxied.forEach { $0.kill() }
        proxied.removeAll()
        proxy?.stop()
        proxy = nil
        super.tearDown()
    }

    func testConnectionResetMidCommandLosesNothing() throws {
        let first = try connectThroughProxy()
        let session = try openSession(first, name: "reset")
        let commandID = try first.startCommand(channel: 1, script: Self.script)

        // Acknowledge part of what arrived, keep reading unacknowledged, then the reset.
        var seen: [Record] = []
        try read(first, into: &seen) { Self.stdout($0).contains("line 20\n") }
        let acked = try XCTUnwrap(seen.last).seq
        try first.ack(channel: 1, seq: acked)
        try read(first, into: &seen) { Self.stdout($0).contains("line 60\n") }
        proxy.cut()
        XCTAssertEqual(try first.waitForExit(timeout: 10), .exited(255), "ssh dies of the reset")
        // (ssh reports the RST on its next read or write, whichever comes first.)
        XCTAssertTrue(first.stderrText.contains("reset by peer") || first.stderrText.contains("Broken pipe"), first.stderrText)
        seen += drain(first)
        XCTAssertFalse(Self.stdout(seen).contains("line \(Self.lineCount)\n"), "the reset came mid-command")

        let second = try connectThroughProxy()
        let attached = try second.attach(channel: 1, instanceID: session.instanceID, receive: true)
        XCTAssertEqual(attached.runningCommandID, commandID, "the command ran on through the reset")
        XCTAssertLessThanOrEqual(attached.ackedSeq, acked, "the host never counts more than the client acknowledged")
        let replay = try readToEnd(second, commandID: commandID)
        XCTAssertEqual(replay.first?.seq, attached.ackedSeq + 1, "the replay starts right after the acknowledged record")
        try assertLossless(seen: seen, replay: replay)
    }

    func testFrozenLinkThatSSHGivesUpOnLosesNothing() throws {
        // Keepalives every second, two unanswered allowed: ssh notices a frozen link in ~3 s.
        let first = try connectThroughProxy(options: ["ServerAliveInterval=1", "ServerAliveCountMax=2"])
        let session = try openSession(first, name: "frozen")
        let commandID = try first.startCommand(channel: 1, script: Self.script)
        var seen: [Record] = []
        try read(first, into: &seen) { Self.stdout($0).contains("line 20\n") }

        proxy.stall()
        XCTAssertEqual(try first.waitForExit(timeout: 20), .exited(255), "ssh gives up on the silent server")
        XCTAssertTrue(first.stderrText.contains("not responding"), first.stderrText)
        seen += drain(first)
        // What waited in the frozen link now reaches a client that is gone: it must not
        // count as delivered.
        proxy.resume()

        let second = try connectThroughProxy()
        let attached = try second.attach(channel: 1, instanceID: session.instanceID, receive: true)
        XCTAssertEqual(attached.ackedSeq, 0, "nothing was acknowledged")
        let replay = try readToEnd(second, commandID: commandID)
        XCTAssertEqual(replay.first?.seq, 1)
        try assertLossless(seen: seen, replay: replay)
    }

    func testShortStallOnTheSameConnectionLosesNothing() throws {
        let client = try connectThroughProxy()
        let session = try openSession(client, name: "paused")
        let commandID = try client.startCommand(channel: 1, script: Self.script)
        var records: [Record] = []
        try read(client, into: &records) { Self.stdout($0).contains("line 20\n") }

        proxy.stall()
        let frozen = proxy.statistics
        // The command finishes while the link is frozen (seen by a direct connection).
        let observer = try connect(clientID: UUID().uuidString.lowercased())
        try eventually(timeout: 20, "the command finishes during the stall") { try !observer.session(session.instanceID).busy }
        XCTAssertEqual(proxy.statistics.bytesFromTarget, frozen.bytesFromTarget, "no byte passed the frozen link")
        XCTAssertTrue(client.isRunning, "without keepalives ssh just waits")

        proxy.resume()
        try read(client, into: &records) { $0.last.map { $0.kind == .commandEnded } ?? false }
        XCTAssertEqual(try records.last?.commandID(), commandID)
        XCTAssertEqual(try records.last?.exitStatus(), 0)
        XCTAssertEqual(records.map(\.seq), Array(1...UInt64(records.count)), "contiguous, no repeats, none lost")
        XCTAssertEqual(Self.stdout(records), Self.expected)
    }

    // MARK: Helpers

    /// `ssh -s … tether` through the proxy, as this test's client id.
    private func connectThroughProxy(options: [String] = []) throws -> ProtocolTestClient {
        let client = try ProtocolTestClient(fixture: host, clientID: clientID,
                                            command: host.subsystemCommand(throughPort: proxy.port, options: options))
        proxied.append(client)
        return client
    }

    /// Appends channel 1's records until `done` holds.
    private func read(_ client: ProtocolTestClient, into records: inout [Record], until done: ([Record]) -> Bool) throws {
        while !done(records) {
            let frame = try client.nextFrame(what: "records on channel 1") { $0.type == .record && $0.channel == 1 }
            records.append(try Record.decode(frame.payload))
        }
    }

    /// The replay and live output up to the command's end, acknowledged at the end.
    private func readToEnd(_ client: ProtocolTestClient, commandID: UInt64) throws -> [Record] {
        var records: [Record] = []
        try read(client, into: &records) { records in
            guard let last = records.last, last.kind == .commandEnded else { return false }
            return (try? last.commandID()) == commandID
        }
        try client.ack(channel: 1, seq: records[records.count - 1].seq)
        return records
    }

    /// Records a dead connection still delivered: what ssh wrote before it exited. A
    /// frame the fault cut in half was not received, so it ends the list.
    private func drain(_ client: ProtocolTestClient) -> [Record] {
        var records: [Record] = []
        while let frame = try? client.readFrame(timeout: 10) {
            if frame.type == .record && frame.channel == 1, let record = try? Record.decode(frame.payload) {
                records.append(record)
            }
        }
        return records
    }

    /// What the client holds — everything it saw, plus the replay without repeats — is
    /// every line once, in order, under contiguous sequence numbers from 1.
    private func assertLossless(seen: [Record], replay: [Record], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(seen.map(\.seq), Array(1...UInt64(seen.count)), "before the fault: contiguous from 1", file: file, line: line)
        XCTAssertEqual(replay.map(\.seq), replay.first.map { Array($0.seq..<($0.seq + UInt64(replay.count))) } ?? [],
                       "the replay: contiguous", file: file, line: line)
        let lastSeen = seen.last?.seq ?? 0
        for record in replay where record.seq <= lastSeen {
            XCTAssertEqual(record, seen[Int(record.seq) - 1], "a replayed record equals the one received before", file: file, line: line)
        }
        let all = seen + replay.filter { $0.seq > lastSeen }
        XCTAssertEqual(all.map(\.seq), Array(1...UInt64(all.count)), "no gap where the two meet", file: file, line: line)
        XCTAssertEqual(Self.stdout(all), Self.expected, "every line exactly once, in order", file: file, line: line)
        XCTAssertEqual(try all.last?.exitStatus(), 0, file: file, line: line)
        XCTAssertEqual(all.filter { $0.kind == .stderr }, [], file: file, line: line)
    }

    private static func stdout(_ records: [Record]) -> String {
        String(decoding: records.filter { $0.kind == .stdout }.flatMap(\.body), as: UTF8.self)
    }
}
