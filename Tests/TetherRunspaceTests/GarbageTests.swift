import XCTest
import TetherProtocol

/// Bad input closes the one connection that sent it, with a clear error.
final class GarbageTests: RunspaceTestCase {
    private func assertRejected(_ bytes: [UInt8], afterHello: Bool, code: ErrorCode,
                                file: StaticString = #filePath, line: UInt = #line) throws {
        let healthy = try runspace.attachedClient(clientID: "healthy")
        XCTAssertEqual(try healthy.run("x=41").exitStatus, 0)
        let bad = afterHello ? try runspace.connect(clientID: "bad") : try RunspaceClient(path: runspace.socketPath)
        bad.sendRaw(bytes)
        let error = try bad.nextError()
        XCTAssertEqual(error.code, code, error.message, file: file, line: line)
        XCTAssertFalse(error.message.isEmpty, file: file, line: line)
        XCTAssertTrue(try bad.waitForClose(), "the bad connection is closed", file: file, line: line)
        XCTAssertEqual(try healthy.run("echo $x").stdoutText, "41\n", "others are untouched", file: file, line: line)
        XCTAssertNotNil(try runspace.connect(clientID: "later"), "and new connections are accepted", file: file, line: line)
    }

    func testGarbageInsteadOfHello() throws {
        try assertRejected(Array("GET / HTTP/1.1\r\n\r\n".utf8), afterHello: false, code: .frameTooLarge)
    }

    func testWrongFirstFrame() throws {
        let frame = Frame(type: .request, channel: 0, payload: ControlCodec.request(id: 1, .ping))
        try assertRejected(frame.encoded(), afterHello: false, code: .badFrame)
    }

    func testBadMagic() throws {
        let frame = Frame(type: .hello, channel: 0, payload: Array("NOTTETHR".utf8) + [0, 1] + Array("{}".utf8))
        try assertRejected(frame.encoded(), afterHello: false, code: .badFrame)
    }

    func testVersionMismatch() throws {
        let frame = Frame(type: .hello, channel: 0, payload: Hello(role: .subsystem).payload(version: 99))
        try assertRejected(frame.encoded(), afterHello: false, code: .versionMismatch)
    }

    func testUnknownFrameTypeAfterHello() throws {
        try assertRejected([0, 0, 0, 5, 0x7f, 0, 0, 0, 1], afterHello: true, code: .unknownFrameType)
    }

    func testUnexpectedRecordFromAClient() throws {
        let record = Record(seq: 1, kind: .stdout, body: [1, 2, 3])
        try assertRejected(record.frameBytes(channel: 1), afterHello: true, code: .badFrame)
    }

    func testUnreadableRequestIsAnsweredAndTheConnectionLives() throws {
        let client = try runspace.attachedClient()
        client.send(Frame(type: .request, channel: 1, payload: [0, 0, 0, 42] + Array("{not json".utf8)))
        guard case .failure(let body) = try client.response(to: 42, channel: 1) else { return XCTFail() }
        XCTAssertEqual(body.code, .badPayload)
        XCTAssertEqual(try client.run("echo still fine").stdoutText, "still fine\n")
    }

    func testRequestsInTheWrongPlace() throws {
        let client = try runspace.connect()
        let early = client.request(.invoke(InvokeRequest(script: "true")), channel: 4)
        guard case .failure(let notAttached) = try client.response(to: early, channel: 4) else { return XCTFail() }
        XCTAssertEqual(notAttached.code, .notAttached)
        let registryRequest = client.request(.list(SessionFilter()), channel: 0)
        guard case .failure(let wrongChannel) = try client.response(to: registryRequest, channel: 0) else { return XCTFail() }
        XCTAssertEqual(wrongChannel.code, .badRequest)
        let wrongSession = client.request(.attach(instanceID: "another-session", force: false, receive: false), channel: 1)
        guard case .failure(let notFound) = try client.response(to: wrongSession, channel: 1) else { return XCTFail() }
        XCTAssertEqual(notFound.code, .notFound)
        _ = try client.attach(channel: 1, instanceID: runspace.instanceID.uppercased(), receive: false)
        let twice = client.request(.attach(instanceID: runspace.instanceID, force: false, receive: false), channel: 1)
        guard case .failure(let already) = try client.response(to: twice, channel: 1) else { return XCTFail() }
        XCTAssertEqual(already.code, .badRequest)
        guard case .failure(let nul) = try client.start("echo", arguments: ["a\u{0}b"]) else { return XCTFail() }
        XCTAssertEqual(nul.code, .badRequest)
        XCTAssertTrue(nul.message.contains("argument 1"), nul.message)
    }
}
