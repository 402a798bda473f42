import XCTest
@testable import TetherProtocol

/// Big frames are assembled in arrays of their own (`FrameDecoder.assemblyThreshold`):
/// whatever the chunking, and through both ways of feeding the decoder, the frames come
/// out whole, in order, byte for byte — mixed with small ones — and a stream cut inside a
/// big frame is still a partial frame.
final class FrameAssemblyTests: XCTestCase {
    private func sampleFrames() -> [Frame] {
        var frames: [Frame] = []
        for (index, size) in [5, 70_000, 0, 16_371, 16_372, 300, Frame.maxPayloadLength, 1, 65_536].enumerated() {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            frames.append(Frame(type: index % 2 == 0 ? .record : .stdinData, channel: UInt32(index + 1), payload: payload))
        }
        return frames
    }

    private var generator = SystemRandomNumberGenerator()

    func testBigFramesSurviveAnyChunkingThroughAppend() throws {
        let frames = sampleFrames()
        let wire = frames.flatMap { $0.encoded() }
        for round in 0..<20 {
            var decoder = FrameDecoder()
            var out: [Frame] = []
            var offset = 0
            while offset < wire.count {
                let size = round == 0 ? 1 + offset % 7 : Int.random(in: 1...100_000, using: &generator)
                let end = min(wire.count, offset + size)
                decoder.append(wire[offset..<end])
                offset = end
                while let frame = try decoder.next() { out.append(frame) }
            }
            XCTAssertEqual(out, frames, "round \(round)")
            XCTAssertFalse(decoder.hasPartialFrame)
        }
    }

    /// The raw-buffer `append` (a transport's lent bytes, copied with memcpy) keeps the
    /// generic one's results — and leaves `lastOffered`, a reader's drained test, alone.
    func testBigFramesSurviveAnyChunkingThroughLentBuffers() throws {
        let frames = sampleFrames()
        let wire = frames.flatMap { $0.encoded() }
        for round in 0..<20 {
            var decoder = FrameDecoder()
            var out: [Frame] = []
            var offset = 0
            while offset < wire.count {
                let size = round == 0 ? 1 + offset % 7 : Int.random(in: 0...100_000, using: &generator)
                let end = min(wire.count, offset + size)
                wire.withUnsafeBytes { decoder.append(UnsafeRawBufferPointer(rebasing: $0[offset..<end])) }
                XCTAssertEqual(decoder.lastOffered, 0)
                offset = end
                while let frame = try decoder.next() { out.append(frame) }
            }
            XCTAssertEqual(out, frames, "round \(round)")
            XCTAssertFalse(decoder.hasPartialFrame)
        }
    }

    func testBigFramesSurviveAnyChunkingThroughReadsAndComeOutAsWire() throws {
        let frames = sampleFrames()
        let wire = frames.flatMap { $0.encoded() }
        for round in 0..<20 {
            var decoder = FrameDecoder()
            var out: [Frame] = []
            var offset = 0
            while offset < wire.count {
                let limit = Int.random(in: 1...300_000, using: &generator)
                let n = decoder.append(readingUpTo: 256 * 1024) { space in
                    let count = min(space.count, limit, wire.count - offset)
                    wire.withUnsafeBytes { space.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: count) }
                    return count
                }
                XCTAssertGreaterThan(n, 0)
                XCTAssertLessThanOrEqual(n, decoder.lastOffered)
                offset += n
                while let next = try decoder.nextWire() { out.append(next.frame) }
            }
            XCTAssertEqual(out, frames, "round \(round)")
        }
    }

    func testAStreamCutInsideABigFrameIsPartial() throws {
        let big = Frame(type: .record, channel: 1, payload: [UInt8](repeating: 7, count: 50_000)).encoded()
        var decoder = FrameDecoder()
        decoder.append(big[0..<30_000])
        XCTAssertNil(try decoder.next())
        XCTAssertTrue(decoder.hasPartialFrame)
        XCTAssertEqual(decoder.bufferedByteCount, 30_000)
        decoder.append(big[30_000...])
        XCTAssertEqual(try decoder.next()?.payload.count, 50_000)
        XCTAssertFalse(decoder.hasPartialFrame)
    }

    func testAnOversizedHeaderIsStillRejectedBeforeAssembly() {
        var decoder = FrameDecoder()
        var w = ByteWriter()
        w.write(UInt32(Frame.maxPayloadLength + Frame.headerLength + 1))
        w.write(FrameType.record.rawValue)
        w.write(UInt32(1))
        decoder.append(w.bytes)
        XCTAssertThrowsError(try decoder.next()) { error in
            XCTAssertEqual((error as? ProtocolError)?.code, .frameTooLarge)
        }
    }
}
