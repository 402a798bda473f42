import Glibc
import TetherIO
import TetherProtocol
import XCTest

/// Garbage on stdin gets a clear error frame and ends that one subsystem (status 2); the
/// registry and every session are untouched, and the next connection works.
final class StdioGarbageTests: XCTestCase {
    private var host: TestHost!

    override func setUpWithError() throws { host = try TestHost() }
    override func tearDown() { host.tearDown() }

    /// Starts the registry through one connection and returns its pid.
    private func runningRegistry() throws -> pid_t {
        let client = try host.subsystem()
        XCTAssertEqual(try client.request(.ping), .pong)
        let pids = host.registryPIDs()
        XCTAssertEqual(pids.count, 1)
        return try XCTUnwrap(pids.first)
    }

    /// Sends `bytes` after the hello; expects an error frame with `code` and exit status 2,
    /// then checks the registry still answers a new subsystem.
    private func expectRejected(_ bytes: [UInt8], closeInput: Bool = false, code: ErrorCode,
                                mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let registry = try runningRegistry()
        let client = try host.subsystem()
        try client.send(raw: bytes)
        if closeInput { client.closeInput() }
        let error = try client.nextError()
        XCTAssertEqual(error.channel, 0, file: file, line: line)
        XCTAssertEqual(error.body.code, code, error.body.message, file: file, line: line)
        for word in words {
            XCTAssertTrue(error.body.message.contains(word), "'\(error.body.message)' lacks '\(word)'", file: file, line: line)
        }
        XCTAssertEqual(try client.waitForExit(), .exited(2), file: file, line: line)

        let next = try host.subsystem(clientID: "client-b", clientHost: "laptop-b")
        XCTAssertEqual(try next.request(.ping), .pong, file: file, line: line)
        XCTAssertEqual(host.registryPIDs(), [registry], "the registry must be the same process", file: file, line: line)
    }

    func testHTTPRequestIsGarbage() throws {
        // "GET " read as a length is ~1.2 GB: refused from the header alone.
        try expectRejected(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), code: .frameTooLarge,
                           mentioning: ["exceeds the limit"])
    }

    func testTruncatedFrameThenEOF() throws {
        let whole = Frame(type: .request, channel: 0, payload: ControlCodec.request(id: 7, .ping)).encoded()
        try expectRejected(Array(whole.prefix(whole.count - 3)), closeInput: true, code: .badFrame,
                           mentioning: ["ended inside a frame"])
    }

    func testOversizedLength() throws {
        var bytes: [UInt8] = [0x00, 0x20, 0x00, 0x10, FrameType.request.rawValue, 0, 0, 0, 0]
        bytes += [UInt8](repeating: 0x41, count: 64)
        try expectRejected(bytes, code: .frameTooLarge, mentioning: ["\(Frame.maxPayloadLength)"])
    }

    func testLengthBelowHeader() throws {
        try expectRejected([0, 0, 0, 2, 1, 0], code: .badFrame, mentioning: ["bad frame length 2"])
    }

    func testUnknownFrameType() throws {
        try expectRejected([0, 0, 0, 5, 0x7e, 0, 0, 0, 0], code: .unknownFrameType, mentioning: ["0x7e"])
    }

    func testRecordFromAClientIsRefused() throws {
        let record = Record(seq: 1, kind: .stdout, body: [0x41]).frameBytes(channel: 1)
        try expectRejected(record, code: .badFrame, mentioning: ["record"])
    }

    func testUnreadableRequestIsAnsweredAndTheConnectionLives() throws {
        let client = try host.subsystem()
        var payload = ByteWriter()
        payload.write(UInt32(5))
        payload.write(contentsOf: Array("{not json".utf8))
        try client.send(Frame(type: .request, channel: 0, payload: payload.bytes))
        let response = try client.awaitResponse(id: 5)
        XCTAssertEqual(response.failure?.code, .badRequest)
        XCTAssertTrue(response.failure?.message.contains("unreadable request") ?? false)
        XCTAssertEqual(try client.request(.ping), .pong)
    }

    func testReservedRequestIDsAreRefused() throws {
        let client = try host.subsystem()
        try client.send(Frame(type: .request, channel: 0, payload: ControlCodec.request(id: 0x8000_0001, .ping)))
        let response = try client.awaitResponse(id: 0x8000_0001)
        XCTAssertEqual(response.failure?.code, .badRequest)
        XCTAssertTrue(response.failure?.message.contains("reserved") ?? false)
    }

    func testChannelRequestsNeedAnAttach() throws {
        let client = try host.subsystem()
        let onZero = try client.request(.invoke(InvokeRequest(script: "true")))
        XCTAssertEqual(onZero.failure?.code, .badRequest)
        let unattached = try client.request(channel: 3, .invoke(InvokeRequest(script: "true")))
        XCTAssertEqual(unattached.failure?.code, .notAttached)
        XCTAssertTrue(unattached.failure?.message.contains("channel 3") ?? false)
    }

    func testGarbageOnTheRegistrySocketClosesOnlyThatConnection() throws {
        let registry = try runningRegistry()
        let fd = try UnixSocket.connect(path: host.paths.registrySocket)
        defer { close(fd) }
        var limit = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let garbage = Array("\u{0}\u{0}\u{0}\u{9}\u{77}garbage!".utf8)
        XCTAssertEqual(garbage.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }, garbage.count)
        var decoder = FrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var frames: [Frame] = []
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            decoder.append(buffer[0..<n])
            while let frame = try decoder.next() { frames.append(frame) }
        }
        let error = try XCTUnwrap(frames.first { $0.type == .error })
        let body = try WireJSON.decode(ErrorBody.self, from: error.payload)
        XCTAssertEqual(body.code, .unknownFrameType)

        let next = try host.subsystem()
        XCTAssertEqual(try next.request(.ping), .pong)
        XCTAssertEqual(host.registryPIDs(), [registry])
    }
}
