import XCTest
import TetherProtocol
import TetherTestSupport

/// Bad bytes on the subsystem's stdin get one clear `error` frame and end that one
/// connection; the registry and every session carry on.
final class SSHGarbageTests: HostTestCase {
    func testGarbageInsteadOfHello() throws {
        try assertRejected(afterHello: false, Array("SSH-2.0-OpenSSH_9.2 not a tether peer\r\n".utf8),
                           codes: [.badFrame, .frameTooLarge, .unknownFrameType])
    }

    func testGarbageFrameLength() throws {
        // A length below the 5-byte header minimum, then noise.
        try assertRejected([0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03],
                           codes: [.badFrame], messageMentions: ["length"])
    }

    func testTruncatedFrameThenEOF() throws {
        var bytes: [UInt8] = []
        Frame.appendHeader(to: &bytes, type: .request, channel: 0, payloadLength: 100)
        bytes += Array(repeating: UInt8(ascii: "x"), count: 20)
        try assertRejected(bytes, thenEOF: true, codes: [.badFrame], messageMentions: ["inside a frame", "truncated"])
    }

    func testOversizedLength() throws {
        var bytes: [UInt8] = []
        Frame.appendHeader(to: &bytes, type: .request, channel: 0, payloadLength: Frame.maxPayloadLength + 1)
        try assertRejected(bytes, codes: [.frameTooLarge], messageMentions: ["limit", "large", "exceeds"])
    }

    func testUnknownFrameType() throws {
        let bytes: [UInt8] = [0, 0, 0, 5, 0x7f, 0, 0, 0, 0]
        try assertRejected(bytes, codes: [.unknownFrameType], messageMentions: ["0x7f", "7f"])
    }

    /// Opens a healthy session, sends `bytes` on a second connection, expects an error
    /// frame on channel 0 (one of `codes`, a message with one of `messageMentions`) and
    /// ssh's exit, then checks the registry and the healthy session are untouched.
    private func assertRejected(afterHello: Bool = true, _ bytes: [UInt8], thenEOF: Bool = false,
                                codes: Set<ErrorCode>, messageMentions: [String] = [],
                                file: StaticString = #filePath, line: UInt = #line) throws {
        let healthy = try connect()
        let session = try openSession(healthy, name: "bystander")
        try run(healthy, "x=41")
        let registry = try XCTUnwrap(host.registryPID())

        let bad = try connect(clientID: UUID().uuidString.lowercased(), hello: afterHello)
        try bad.sendRaw(bytes)
        if thenEOF { bad.closeInput() }
        let frame = try bad.nextFrame(timeout: 10, what: "an error frame") { $0.type == .error }
        XCTAssertEqual(frame.channel, 0, file: file, line: line)
        let body = try ProtocolTestClient.errorBody(frame)
        XCTAssertTrue(codes.contains(body.code), "code \(body.code.rawValue), expected one of \(codes.map(\.rawValue))", file: file, line: line)
        XCTAssertFalse(body.message.isEmpty, file: file, line: line)
        if !messageMentions.isEmpty {
            XCTAssertTrue(messageMentions.contains { body.message.lowercased().contains($0.lowercased()) },
                          "message \"\(body.message)\" should mention one of \(messageMentions)", file: file, line: line)
        }
        // The host closes the connection: nothing more, then ssh exits.
        while let extra = try bad.readFrame(timeout: 10) {
            XCTFail("frame after the error: \(extra.type) on channel \(extra.channel)", file: file, line: line)
        }
        try bad.waitForExit(timeout: 10)

        XCTAssertEqual(host.registryPID(), registry, "the registry is untouched", file: file, line: line)
        XCTAssertEqual(try run(healthy, "echo $x"), "41\n", file: file, line: line)
        let observer = try connect(clientID: UUID().uuidString.lowercased())
        XCTAssertEqual(try observer.session(session.instanceID).state, .running, file: file, line: line)
    }
}
