import XCTest
import TetherProtocol
import TetherTestSupport

/// One command at a time per session: a second one waits its turn, or — when it asked
/// not to wait — fails at once with `busy`.
final class SSHBusyTests: HostTestCase {
    func testSecondWaitingCommandRunsAfterTheFirst() throws {
        let first = try connect()
        let session = try openSession(first, name: "queue")
        let firstID = try first.startCommand(channel: 1, script: "sleep 1; echo first")

        let second = try connect()
        _ = try second.attach(channel: 1, instanceID: session.instanceID)
        let secondResult = try second.invoke(channel: 1, script: "echo second", wait: true, timeout: 20)
        let firstResult = try first.collect(channel: 1, commandID: firstID, timeout: 20)

        XCTAssertEqual(firstResult.stdoutText, "first\n")
        XCTAssertEqual(secondResult.stdoutText, "second\n")
        XCTAssertEqual(firstResult.exitStatus, 0)
        XCTAssertEqual(secondResult.exitStatus, 0)
        // The second started only after the first ended.
        let firstEnded = try XCTUnwrap(firstResult.records.last?.seq)
        let secondStarted = try XCTUnwrap(secondResult.records.first?.seq)
        XCTAssertGreaterThan(secondStarted, firstEnded)
    }

    func testNoWaitCommandFailsBusyWhileOneRuns() throws {
        let first = try connect()
        let session = try openSession(first, name: "busy")
        let runningID = try first.startCommand(channel: 1, script: "sleep 30")

        let second = try connect()
        _ = try second.attach(channel: 1, instanceID: session.instanceID)
        let response = try second.request(channel: 1, .invoke(InvokeRequest(script: "echo never", wait: false)))
        guard case .failure(let body) = response else {
            return XCTFail("expected busy, got \(response)")
        }
        XCTAssertEqual(body.code, .busy)
        XCTAssertFalse(body.message.isEmpty)

        try first.signal(channel: 1, .interrupt)
        _ = try first.collect(channel: 1, commandID: runningID, timeout: 10)
        XCTAssertEqual(try run(second, "echo free again"), "free again\n")
    }
}
