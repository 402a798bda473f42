import XCTest
import TetherProtocol

final class BusyTests: RunspaceTestCase {
    func testWaitingInvokeRunsAfterTheFirst() throws {
        let first = try runspace.attachedClient(clientID: "a")
        let second = try runspace.attachedClient(clientID: "a", channel: 2)
        guard case .success(let firstID) = try first.start("sleep 1; echo first") else { return XCTFail() }
        let began = Date()
        let secondStart = try second.start("echo second", wait: true, channel: 2)
        guard case .success(let secondID) = secondStart else { return XCTFail("\(secondStart)") }
        XCTAssertGreaterThan(Date().timeIntervalSince(began), 0.5, "started only after the first ended")
        let firstResult = try first.collect(commandID: firstID)
        let secondResult = try second.collect(commandID: secondID, channel: 2)
        XCTAssertEqual(firstResult.stdoutText, "first\n")
        XCTAssertEqual(secondResult.stdoutText, "second\n")
        XCTAssertGreaterThan(secondResult.records.first!.seq, firstResult.records.last!.seq)
    }

    func testNoWaitInvokeFailsBusyAtOnce() throws {
        let first = try runspace.attachedClient()
        guard case .success(let id) = try first.start("sleep 2") else { return XCTFail() }
        let second = try runspace.attachedClient(channel: 2)
        let began = Date()
        guard case .failure(let body) = try second.start("echo no", wait: false, channel: 2) else { return XCTFail("ran") }
        XCTAssertLessThan(Date().timeIntervalSince(began), 1)
        XCTAssertEqual(body.code, .busy)
        XCTAssertTrue(body.message.hasPrefix("session busy: a command has been running for"), body.message)
        XCTAssertEqual(try first.collect(commandID: id).exitStatus, 0)
        XCTAssertEqual(try second.run("echo free again", channel: 2).stdoutText, "free again\n")
    }

    func testWaitTimeoutFailsBusy() throws {
        let first = try runspace.attachedClient()
        guard case .success(let id) = try first.start("sleep 3") else { return XCTFail() }
        let began = Date()
        guard case .failure(let body) = try first.start("echo late", wait: true, waitTimeout: 0.5, channel: 1) else {
            return XCTFail("ran")
        }
        XCTAssertEqual(body.code, .busy)
        XCTAssertLessThan(Date().timeIntervalSince(began), 2.5)
        XCTAssertTrue(body.message.contains("try again later or wait longer"), body.message)
        XCTAssertEqual(try first.collect(commandID: id).exitStatus, 0)
    }

    func testWaitingInvokesRunInOrder() throws {
        let client = try runspace.attachedClient()
        guard case .success(let first) = try client.start("sleep 0.5; echo 1") else { return XCTFail() }
        let ids = (2...4).map { n in
            client.request(.invoke(InvokeRequest(script: "echo \(n)")), channel: 1)
        }
        var outputs = [try client.collect(commandID: first).stdoutText]
        for id in ids {
            guard case .started(let commandID) = try client.response(to: id, channel: 1) else { return XCTFail() }
            outputs.append(try client.collect(commandID: commandID).stdoutText)
        }
        XCTAssertEqual(outputs, ["1\n", "2\n", "3\n", "4\n"])
    }
}
