import Glibc
import TetherIO
import TetherProtocol
import XCTest

/// FrameConnection's hot-path writes (writev of queued chunks, a record's head and body
/// sent apart, wire frames relayed as they came) and reads (straight into the decoder,
/// frames handed over as wire bytes) keep every frame whole and in order — through a
/// socket buffer far smaller than the frames, so writes are partial all the time.
final class FrameConnectionWriteTests: XCTestCase {
    func testEveryKindOfSendArrivesWholeAndInOrder() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        var small: Int32 = 4096
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let reactor = try Reactor()
        let sender = FrameConnection(reactor: reactor, socket: fds[0], name: "sender")
        let receiver = FrameConnection(reactor: reactor, readFD: fds[1], writeFD: fds[1], name: "receiver",
                                       readBufferSize: 5000)

        var expected: [[UInt8]] = []
        var received: [[UInt8]] = []
        receiver.onWireFrame = { wire in
            received.append(wire.bytes)
            if received.count == expected.count { reactor.stop() }
        }
        sender.start()
        receiver.start()
        for i in 0..<400 {
            let body = (0..<(i * 7919) % 70_000).map { UInt8(truncatingIfNeeded: $0 &+ i) }
            let record = Record(seq: UInt64(i + 1), kind: .stdout, body: body)
            switch i % 4 {
            case 0:
                sender.send(head: record.frameHead(channel: 3), body: record.body)
                expected.append(record.frameBytes(channel: 3))
            case 1:
                sender.send(bytes: record.frameBytes(channel: 4))
                expected.append(record.frameBytes(channel: 4))
            case 2:
                var decoder = FrameDecoder()
                decoder.append(record.frameBytes(channel: 5))
                var wire = try XCTUnwrap(try decoder.nextWire())
                wire.channel = 6
                sender.send(wire)
                expected.append(record.frameBytes(channel: 6))
            default:
                let frame = Frame(type: .ack, channel: UInt32(i), payload: ControlCodec.ack(UInt64(i)))
                sender.send(frame)
                expected.append(frame.encoded())
            }
        }
        XCTAssertGreaterThan(sender.pendingWriteBytes, 0, "the socket should have pushed back")
        let timeout = reactor.schedule(after: 60) { reactor.stop() }
        reactor.run()
        reactor.cancel(timeout)
        XCTAssertEqual(received.count, expected.count)
        XCTAssertTrue(received == expected, "frames differ")
        XCTAssertEqual(sender.pendingWriteBytes, 0)
        sender.close()
        receiver.close()
    }

    /// A hold keeps frames back until it is released, its time runs out, or enough is
    /// queued — and then they leave together, in order.
    func testHeldWritesLeaveTogetherOnReleaseTimeoutOrSize() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[1]) }
        let reactor = try Reactor()
        let sender = FrameConnection(reactor: reactor, socket: fds[0], name: "sender")
        defer { sender.close() }
        func readable() -> Int {
            var count: Int32 = 0
            _ = ioctl(fds[1], UInt(FIONREAD), &count)
            return Int(count)
        }
        let small = Frame(type: .ack, channel: 1, payload: ControlCodec.ack(1)).encoded()

        // Released by hand: nothing on the wire before, both frames after.
        sender.holdWrites(for: 60)
        sender.send(bytes: small)
        sender.send(bytes: small)
        XCTAssertEqual(readable(), 0, "held")
        sender.releaseHeldWrites()
        XCTAssertEqual(readable(), 2 * small.count)
        var sink = [UInt8](repeating: 0, count: 1 << 20)
        _ = read(fds[1], &sink, sink.count)

        // Released by its timer.
        sender.holdWrites(for: 0.01)
        sender.send(bytes: small)
        XCTAssertEqual(readable(), 0, "held")
        let stop = reactor.schedule(after: 0.2) { reactor.stop() }
        reactor.run()
        reactor.cancel(stop)
        XCTAssertEqual(readable(), small.count, "the timer let it go")
        _ = read(fds[1], &sink, sink.count)

        // Released by size: a stream is never held back.
        sender.holdWrites(for: 60)
        let big = Record(seq: 2, kind: .stdout, body: [UInt8](repeating: 7, count: FrameConnection.holdLimitBytes)).frameBytes(channel: 1)
        sender.send(bytes: small)
        sender.send(bytes: big)
        XCTAssertGreaterThan(readable(), small.count, "past the size limit the hold ends at once")
        sender.releaseHeldWrites()  // a no-op now
    }
}
