import XCTest
@testable import TetherProtocol

final class FrameDecoderTests: XCTestCase {
    func testRoundTripsAFrameFedOneByteAtATime() throws {
        let frame = Frame(type: .stdinData, channel: 7, payload: Array("hello".utf8))
        var decoder = FrameDecoder()
        var decoded: [Frame] = []
        for byte in frame.encoded() {
            decoder.append([byte])
            if let next = try decoder.next() { decoded.append(next) }
        }
        XCTAssertEqual(decoded, [frame])
        XCTAssertFalse(decoder.hasPartialFrame)
    }

    func testDecodesSeveralFramesFromOneChunk() throws {
        let frames = (1...5).map { Frame(type: .ack, channel: UInt32($0), payload: ControlCodec.ack(UInt64($0 * 100))) }
        var decoder = FrameDecoder()
        decoder.append(frames.flatMap { $0.encoded() })
        var decoded: [Frame] = []
        while let next = try decoder.next() { decoded.append(next) }
        XCTAssertEqual(decoded, frames)
        XCTAssertEqual(try ControlCodec.decodeAck(decoded[2].payload), 300)
    }

    func testEmptyPayloadIsAllowed() throws {
        var decoder = FrameDecoder()
        decoder.append(Frame(type: .stdinEOF, channel: 1).encoded())
        XCTAssertEqual(try decoder.next(), Frame(type: .stdinEOF, channel: 1))
    }

    func testTruncatedFrameWaitsForMoreAndReportsPartial() throws {
        let bytes = Frame(type: .request, channel: 0, payload: [1, 2, 3, 4, 5, 6]).encoded()
        var decoder = FrameDecoder()
        decoder.append(bytes.dropLast(3))
        XCTAssertNil(try decoder.next())
        XCTAssertTrue(decoder.hasPartialFrame)
        decoder.append(bytes.suffix(3))
        XCTAssertNotNil(try decoder.next())
    }

    func testOversizedLengthIsRejectedBeforeThePayloadArrives() {
        var decoder = FrameDecoder(maxPayloadLength: 1024)
        var header = ByteWriter()
        header.write(UInt32(5 + 4096))
        decoder.append(header.bytes)  // only the length: no payload buffered yet
        XCTAssertThrowsError(try decoder.next()) { error in
            XCTAssertEqual(error as? ProtocolError, .frameTooLarge(4096, limit: 1024))
            XCTAssertEqual((error as? ProtocolError)?.code, .frameTooLarge)
        }
    }

    func testHugeLengthFromGarbageIsRejected() {
        var decoder = FrameDecoder()
        decoder.append(Array("GET / HTTP/1.1\r\n".utf8))
        XCTAssertThrowsError(try decoder.next()) { error in
            guard case .frameTooLarge = error as? ProtocolError else {
                return XCTFail("expected frameTooLarge, got \(error)")
            }
        }
    }

    func testLengthBelowHeaderIsRejected() {
        var decoder = FrameDecoder()
        decoder.append([0, 0, 0, 2, 1, 0])
        XCTAssertThrowsError(try decoder.next()) { error in
            XCTAssertEqual(error as? ProtocolError, .badLength(2))
        }
    }

    func testUnknownFrameTypeIsRejected() {
        var decoder = FrameDecoder()
        decoder.append([0, 0, 0, 5, 0x7f, 0, 0, 0, 0])
        XCTAssertThrowsError(try decoder.next()) { error in
            XCTAssertEqual(error as? ProtocolError, .unknownFrameType(0x7f))
            XCTAssertTrue("\(error)".contains("0x7f"))
        }
    }

    func testMaximumSizedPayloadIsAccepted() throws {
        let payload = [UInt8](repeating: 0xab, count: Frame.maxPayloadLength)
        var decoder = FrameDecoder()
        decoder.append(Frame(type: .stdinData, channel: 3, payload: payload).encoded())
        XCTAssertEqual(try decoder.next()?.payload.count, Frame.maxPayloadLength)
    }
}

final class HelloTests: XCTestCase {
    func testHelloRoundTrips() throws {
        let hello = Hello(role: .client, clientID: "c-1", clientHost: "laptop")
        XCTAssertEqual(try Hello.decode(hello.payload()), hello)
    }

    func testVersionMismatchNamesBothVersions() {
        let payload = Hello(role: .client).payload(version: 99)
        XCTAssertThrowsError(try Hello.decode(payload)) { error in
            XCTAssertEqual(error as? ProtocolError, .versionMismatch(peer: ProtocolRange(oldest: 99, newest: 99), ours: .ours))
            XCTAssertTrue("\(error)".contains("99"))
            XCTAssertEqual((error as? ProtocolError)?.code, .versionMismatch)
        }
    }

    func testWrongMagicIsRejected() {
        XCTAssertThrowsError(try Hello.decode(Array("SSH-2.0-OpenSSH_9.2".utf8))) { error in
            XCTAssertEqual(error as? ProtocolError, .badMagic)
        }
    }

    func testTruncatedHelloIsRejected() {
        XCTAssertThrowsError(try Hello.decode(Array(helloMagic.prefix(4))))
    }
}

final class RecordAndControlTests: XCTestCase {
    func testRecordFrameBytesMatchTheGenericEncoding() throws {
        let record = Record(seq: 42, kind: .stdout, body: Array("out\n".utf8))
        XCTAssertEqual(record.frameBytes(channel: 9), Frame(type: .record, channel: 9, payload: record.payload()).encoded())
        var decoder = FrameDecoder()
        decoder.append(record.frameBytes(channel: 9))
        let frame = try XCTUnwrap(try decoder.next())
        XCTAssertEqual(try Record.decode(frame.payload), record)
    }

    func testTypedRecordBodies() throws {
        XCTAssertEqual(try Record.commandEnded(seq: 3, commandID: 8, exitStatus: -1).exitStatus(), -1)
        XCTAssertEqual(try Record.commandStarted(seq: 1, commandID: 77).commandID(), 77)
        let dropped = try Record.dropped(seq: 2, bytes: 1000, records: 3).droppedCounts()
        XCTAssertEqual(dropped.bytes, 1000)
        XCTAssertEqual(dropped.records, 3)
        let closed = try Record.sessionClosed(seq: 4, exitCode: 7, reason: "exit 7").closedInfo()
        XCTAssertEqual(closed.exitCode, 7)
        XCTAssertEqual(closed.reason, "exit 7")
    }

    func testTruncatedRecordIsAnError() {
        XCTAssertThrowsError(try Record.decode([0, 0, 0, 1]))
        XCTAssertThrowsError(try Record.decode([0, 0, 0, 0, 0, 0, 0, 1, 99])) { error in
            guard case .badPayload = error as? ProtocolError else { return XCTFail("\(error)") }
        }
    }

    func testRequestsRoundTrip() throws {
        let requests: [Request] = [
            .create(CreateRequest(name: "deploy", idleTimeout: 60, outputBuffering: .drop)),
            .list(SessionFilter(name: "dep*")),
            .attach(instanceID: "abc", force: true, receive: true),
            .invoke(InvokeRequest(script: "echo \"$@\"", arguments: ["a b", "'c'"], stdin: true, wait: false)),
            .signal(.interrupt), .detach, .ping,
            .release(instanceID: "abc", idleTimeout: nil, outputBuffering: .block),
        ]
        for (index, request) in requests.enumerated() {
            let (id, decoded) = try ControlCodec.decodeRequest(ControlCodec.request(id: UInt32(index), request))
            XCTAssertEqual(id, UInt32(index))
            XCTAssertEqual(decoded, request)
        }
    }

    func testMalformedJSONIsABadPayload() {
        var w = ByteWriter()
        w.write(UInt32(1))
        w.write(contentsOf: Array("{not json".utf8))
        XCTAssertThrowsError(try ControlCodec.decodeRequest(w.bytes)) { error in
            XCTAssertEqual((error as? ProtocolError)?.code, .badPayload)
        }
    }

    func testResponseFailureRoundTrips() throws {
        let response = Response.failure(ErrorBody(.busy, "session busy"))
        let (id, decoded) = try ControlCodec.decodeResponse(ControlCodec.response(id: 5, response))
        XCTAssertEqual(id, 5)
        XCTAssertEqual(decoded, response)
    }
}
