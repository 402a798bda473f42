import XCTest
import Foundation
import Glibc
import TetherIO
import TetherProtocol
import TetherTestSupport
@testable import TetherClient

/// A local client that speaks raw frames to the keeper's socket, as a misbehaving (or
/// fuzzing) program could: the keeper request, the hello, then whatever the test sends.
final class KeeperStreamClient {
    let fd: Int32
    private var decoder = FrameDecoder()
    private var queue: [Frame] = []
    private var nextRequestID: UInt32 = 1
    private(set) var endOfStream = false

    /// Opens a stream to `destination` for the client of `home`, through the keeper at
    /// `socket` (running already), and does the handshake.
    init(socket: String, home: String, destination: String, sshConfig: String) throws {
        fd = try UnixSocket.connect(path: socket)
        let target = try ConnectionPlan.resolve(destination, options: ConnectionOptions(configFile: sshConfig)).target
        let clientID = try ClientHome(directory: home).clientID()
        let hello = Hello(role: .client, clientID: clientID, clientHost: Environment.hostName())
        try send(KeeperCodec.requestFrame(.open(KeeperOpen(version: keeperWireVersion, destination: destination,
                                                             target: KeeperTarget(target), hello: hello,
                                                             handshakeTimeout: 30))))
        let reply = try KeeperCodec.decodeReply(try XCTUnwrap(try readFrame(), "the keeper's answer"))
        guard case .opened = reply else { throw TestSupportError("the keeper answered \(reply)") }
        try send(Frame(type: .hello, channel: 0, payload: hello.payload()))
        let host = try XCTUnwrap(try readFrame(), "the host's hello")
        XCTAssertEqual(host.type, .hello)
    }

    deinit { close(fd) }

    func send(_ frame: Frame) throws {
        try Descriptors.writeAll(fd, frame.encoded(), until: Deadline(secondsFromNow: 10), what: "the keeper socket")
    }

    /// Sends `request` on `channel`; returns its request id.
    @discardableResult
    func sendRequest(channel: UInt32, _ request: Request) throws -> UInt32 {
        let id = nextRequestID
        nextRequestID += 1
        try send(Frame(type: .request, channel: channel, payload: ControlCodec.request(id: id, request)))
        return id
    }

    func awaitResponse(channel: UInt32, id: UInt32, timeout: Double = 15) throws -> Response {
        let frame = try nextFrame(timeout: timeout) {
            $0.type == .response && $0.channel == channel && ControlCodec.requestID(of: $0.payload) == id
        }
        return try ControlCodec.decodeResponse(frame.payload).1
    }

    func request(channel: UInt32, _ request: Request) throws -> Response {
        try awaitResponse(channel: channel, id: try sendRequest(channel: channel, request))
    }

    func nextFrame(timeout: Double = 15, where matches: (Frame) -> Bool) throws -> Frame {
        if let index = queue.firstIndex(where: matches) { return queue.remove(at: index) }
        let deadline = Deadline(secondsFromNow: timeout)
        while true {
            guard let frame = try readFrame(until: deadline) else {
                throw TestSupportError("the keeper ended the stream while a frame was awaited")
            }
            if matches(frame) { return frame }
            queue.append(frame)
        }
    }

    func readFrame(until deadline: Deadline = Deadline(secondsFromNow: 15)) throws -> Frame? {
        while true {
            if let frame = try decoder.next() { return frame }
            if endOfStream { return nil }
            guard let chunk = try Descriptors.readChunk(fd, until: deadline) else {
                throw TestSupportError("no frame from the keeper in time")
            }
            if chunk.isEmpty { endOfStream = true } else { decoder.append(chunk) }
        }
    }
}
