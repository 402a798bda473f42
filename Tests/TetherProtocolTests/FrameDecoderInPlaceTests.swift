import XCTest
@testable import TetherProtocol

/// The copy-avoiding side of the decoder: reading straight into its buffer, frames as wire
/// bytes for relays, payloads visited in place.
final class FrameDecoderInPlaceTests: XCTestCase {
    private let frames: [Frame] = (1...40).map { (i: Int) -> Frame in
        let count: Int = (i * 997) % 70_000
        let payload: [UInt8] = (0..<count).map { (j: Int) -> UInt8 in UInt8(truncatingIfNeeded: j &* 31 &+ i) }
        return Frame(type: i % 3 == 0 ? .ack : .record, channel: UInt32(i), payload: payload)
    }

    /// Feeds `bytes` in reads of `size` through `append(readingUpTo:)`.
    private func feed(_ bytes: [UInt8], readSize size: Int, into decoder: inout FrameDecoder,
                      taking take: (inout FrameDecoder) throws -> Void) rethrows {
        var offset = 0
        while offset < bytes.count {
            let n = decoder.append(readingUpTo: size) { space in
                let count = min(space.count, bytes.count - offset)
                bytes.withUnsafeBytes { space.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + count])) }
                return count
            }
            offset += n
            try take(&decoder)
        }
    }

    func testReadsInPlaceAtAnyReadSize() throws {
        let wire = frames.flatMap { $0.encoded() }
        for size in [1, 7, 4096, 65_536, 300_000] {
            var decoder = FrameDecoder()
            var decoded: [Frame] = []
            try feed(wire, readSize: size, into: &decoder) { decoder in
                while let frame = try decoder.next() { decoded.append(frame) }
            }
            XCTAssertEqual(decoded, frames, "read size \(size)")
            XCTAssertFalse(decoder.hasPartialFrame)
        }
    }

    func testAFailedReadAppendsNothing() {
        var decoder = FrameDecoder()
        XCTAssertEqual(decoder.append(readingUpTo: 1024) { _ in -1 }, -1)
        XCTAssertEqual(decoder.append(readingUpTo: 1024) { _ in 0 }, 0)
        XCTAssertEqual(decoder.bufferedByteCount, 0)
    }

    func testWireFramesAreTheBytesAsSentAndRetagInPlace() throws {
        var decoder = FrameDecoder()
        decoder.append(frames.flatMap { $0.encoded() })
        for frame in frames {
            var wire = try XCTUnwrap(try decoder.nextWire())
            XCTAssertEqual(wire.bytes, frame.encoded())
            XCTAssertEqual(wire.type, frame.type)
            XCTAssertEqual(wire.channel, frame.channel)
            XCTAssertEqual(wire.payloadCount, frame.payload.count)
            XCTAssertEqual(wire.frame, frame)
            wire.channel = 0xdead_beef
            var moved = frame
            moved.channel = 0xdead_beef
            XCTAssertEqual(wire.bytes, moved.encoded())
            XCTAssertEqual(wire.withPayload { Array($0) }, frame.payload)
        }
        XCTAssertNil(try decoder.nextWire())
    }

    func testWireFramesAreCheckedLikeFrames() {
        var decoder = FrameDecoder(maxPayloadLength: 16)
        decoder.append(Frame(type: .stdinData, channel: 1, payload: Array(repeating: 1, count: 17)).encoded())
        XCTAssertThrowsError(try decoder.nextWire()) { error in
            XCTAssertEqual(error as? ProtocolError, .frameTooLarge(17, limit: 16))
        }
    }

    func testRecordsDecodeInPlace() throws {
        let records = [
            Record(seq: 1, kind: .commandStarted, body: [0, 0, 0, 0, 0, 0, 0, 9]),
            Record(seq: 2, kind: .stdout, body: Array(repeating: 0x41, count: Record.maxDataLength)),
            Record(seq: 3, kind: .stderr, body: []),
        ]
        var decoder = FrameDecoder()
        decoder.append(records.flatMap { $0.frameBytes(channel: 4) })
        for record in records {
            let decoded = try decoder.next { type, channel, payload throws(ProtocolError) in
                XCTAssertEqual(type, .record)
                XCTAssertEqual(channel, 4)
                return try Record.decode(payload)
            }
            XCTAssertEqual(decoded, record)
        }
        let bad: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 1, 99]
        XCTAssertThrowsError(try bad.withUnsafeBytes { raw throws(ProtocolError) in try Record.decode(raw) }) { error in
            guard case .badPayload = error as? ProtocolError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try [UInt8]([0, 1]).withUnsafeBytes { raw throws(ProtocolError) in try Record.decode(raw) })
        XCTAssertEqual(Record.header(seq: 7, kind: .stderr) + [1, 2], Record(seq: 7, kind: .stderr, body: [1, 2]).payload())
        for record in records {
            XCTAssertEqual(record.frameHead(channel: 12) + record.body, record.frameBytes(channel: 12))
        }
    }
}
