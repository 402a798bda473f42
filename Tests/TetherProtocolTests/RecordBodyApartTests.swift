import XCTest
@testable import TetherProtocol

/// `FrameDecoder.keepsRecordBodiesApart` (the library's decoder): a big record's body is
/// read into an array of its own and handed over as the record's body. Whatever the
/// chunking, records and other frames come out whole, in order, byte for byte; a reader
/// that asks for whole frames still gets them; and after a big frame a read into the
/// empty buffer asks only for the next frame's headers, so the body that follows lands
/// in its own array rather than in the shared buffer.
final class RecordBodyApartTests: XCTestCase {
    private enum Out: Equatable {
        case frame(Frame)
        case record(channel: UInt32, Record)
    }

    /// Big and small records, a big non-record frame, and small control frames, mixed.
    private func sampleFrames() -> [Frame] {
        var frames: [Frame] = []
        var seq: UInt64 = 1
        for (index, size) in [5, 70_000, 0, 16_371, 16_372, 300, Record.maxDataLength, 1, 65_536, 200_000].enumerated() {
            let body = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            if index == 4 {
                frames.append(Frame(type: .stdinData, channel: 9, payload: body))
            } else {
                frames.append(Record(seq: seq, kind: index % 3 == 0 ? .stderr : .stdout, body: body).frameBytes(channel: UInt32(index + 1)).asFrame)
                seq += 1
            }
            if index % 2 == 1 { frames.append(Frame(type: .ack, channel: 2, payload: ControlCodec.ack(seq))) }
        }
        return frames
    }

    private func expected(_ frames: [Frame]) throws -> [Out] {
        try frames.map { frame in
            frame.type == .record ? .record(channel: frame.channel, try Record.decode(frame.payload)) : .frame(frame)
        }
    }

    private func take(_ decoder: inout FrameDecoder, into out: inout [Out], bodiesApart: inout Int) throws {
        while let next = try decoder.next({ type, channel, payload throws(ProtocolError) -> Out in
            type == .record
                ? .record(channel: channel, try Record.decode(payload))
                : .frame(Frame(type: type, channel: channel, payload: Array(payload)))
        }, recordBody: { channel, header, body throws(ProtocolError) -> Out in
            bodiesApart += 1
            return .record(channel: channel, try Record.decode(header: header, body: body))
        }) {
            out.append(next)
        }
    }

    func testRecordsSurviveAnyChunkingThroughReads() throws {
        let frames = sampleFrames()
        let wire = frames.flatMap { $0.encoded() }
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20 {
            var decoder = FrameDecoder()
            decoder.keepsRecordBodiesApart = true
            var out: [Out] = []
            var apart = 0
            var offset = 0
            while offset < wire.count {
                let limit = round == 0 ? Int.max : Int.random(in: 1...300_000, using: &generator)
                let n = decoder.append(readingUpTo: 128 * 1024) { space in
                    let count = min(space.count, limit, wire.count - offset)
                    wire.withUnsafeBytes { space.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: count) }
                    return count
                }
                XCTAssertGreaterThan(n, 0)
                offset += n
                try take(&decoder, into: &out, bodiesApart: &apart)
            }
            XCTAssertEqual(out, try expected(frames), "round \(round)")
            XCTAssertFalse(decoder.hasPartialFrame)
            if round == 0 {
                // Reads as big as offered: the 256 KiB record and the last one are cut by
                // a read and assembled apart; the others arrive whole in one read.
                XCTAssertEqual(apart, 2)
            }
        }
    }

    func testRecordsSurviveAnyChunkingThroughAppend() throws {
        let frames = sampleFrames()
        let wire = frames.flatMap { $0.encoded() }
        for round in 0..<10 {
            var decoder = FrameDecoder()
            decoder.keepsRecordBodiesApart = true
            var out: [Out] = []
            var apart = 0
            var offset = 0
            while offset < wire.count {
                let size = round == 0 ? 1 + offset % 7 : Int.random(in: 1...100_000)
                let end = min(wire.count, offset + size)
                decoder.append(wire[offset..<end])
                offset = end
                try take(&decoder, into: &out, bodiesApart: &apart)
            }
            XCTAssertEqual(out, try expected(frames), "round \(round)")
        }
    }

    func testWholeFramesAndWireFramesStillComeOutWhole() throws {
        let frames = sampleFrames()
        let wire = frames.flatMap { $0.encoded() }
        for wholeWire in [false, true] {
            var decoder = FrameDecoder()
            decoder.keepsRecordBodiesApart = true
            var out: [Frame] = []
            var offset = 0
            while offset < wire.count {
                let end = min(wire.count, offset + 10_000)
                decoder.append(wire[offset..<end])
                offset = end
                if wholeWire {
                    while let next = try decoder.nextWire() { out.append(next.frame) }
                } else {
                    while let next = try decoder.next() { out.append(next) }
                }
            }
            XCTAssertEqual(out, frames)
        }
    }

    func testAfterABigFrameOnlyTheNextHeadersAreReadIntoTheBuffer() throws {
        let first = Record(seq: 1, kind: .stdout, body: [UInt8](repeating: 1, count: 200_000)).frameBytes(channel: 1)
        let second = Record(seq: 2, kind: .stdout, body: [UInt8](repeating: 2, count: 100_000)).frameBytes(channel: 1)
        let wire = first + second
        var decoder = FrameDecoder()
        decoder.keepsRecordBodiesApart = true
        var offset = 0
        var out: [Out] = []
        var apart = 0
        // As `HostConnection` does: a read, then every frame it completed taken.
        func read() throws -> Int {
            let n = decoder.append(readingUpTo: 128 * 1024) { space in
                let count = min(space.count, wire.count - offset)
                wire.withUnsafeBytes { space.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: count) }
                offset += count
                return count
            }
            try take(&decoder, into: &out, bodiesApart: &apart)
            return n
        }
        XCTAssertEqual(try read(), 128 * 1024)                       // nothing known yet: a full read
        XCTAssertEqual(try read(), first.count - 128 * 1024)         // the rest of the first body
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(try read(), FrameDecoder.recordHeadLength)    // then the next one's headers alone
        XCTAssertEqual(decoder.lastOffered, FrameDecoder.recordHeadLength)
        XCTAssertEqual(try read(), 100_000)                          // and its body, into its own array
        XCTAssertEqual(decoder.lastOffered, 100_000)
        XCTAssertEqual(out, try expected([first.asFrame, second.asFrame]))
        XCTAssertEqual(apart, 2)
        XCTAssertFalse(decoder.hasPartialFrame)
    }

    func testAnUnknownRecordKindInABodyApartIsAnError() throws {
        var bytes = Record(seq: 1, kind: .stdout, body: [UInt8](repeating: 0, count: 40_000)).frameBytes(channel: 1)
        bytes[4 + Frame.headerLength + 8] = 0xEE
        var decoder = FrameDecoder()
        decoder.keepsRecordBodiesApart = true
        decoder.append(bytes[0..<100])
        var out: [Out] = []
        var apart = 0
        try take(&decoder, into: &out, bodiesApart: &apart)
        decoder.append(bytes[100...])
        XCTAssertThrowsError(try take(&decoder, into: &out, bodiesApart: &apart)) { error in
            XCTAssertEqual(error as? ProtocolError, .badPayload("unknown record kind 238"))
        }
    }
}

private extension Array where Element == UInt8 {
    /// Wire bytes of one frame back as a `Frame`.
    var asFrame: Frame {
        var decoder = FrameDecoder()
        decoder.append(self)
        return try! decoder.next()!
    }
}
