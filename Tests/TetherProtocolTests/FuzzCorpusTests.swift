import XCTest
import Foundation
import TetherProtocol

/// Every input the fuzzer kept (Tests/Fuzz/corpus) and every crash it ever found
/// (Tests/Fuzz/crashes) goes through the fuzz targets again on each test run: a fixed
/// crash stays fixed, and the decoders' round-trip promises are checked on inputs that
/// reach deep into them. scripts/fuzz finds new ones.
final class FuzzCorpusTests: XCTestCase {
    private static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    private func inputs(_ kind: String, _ target: String) throws -> [URL] {
        let directory = Self.fuzzDirectory.appendingPathComponent(kind).appendingPathComponent(target)
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func testEveryCorpusInputAndCrashReproducerPasses() throws {
        var total = 0
        for target in ProtocolFuzzTargets.names {
            let files = try inputs("corpus", target) + inputs("crashes", target)
            for file in files {
                ProtocolFuzzTargets.run(target, Array(try Data(contentsOf: file)))
            }
            total += files.count
        }
        XCTAssertGreaterThan(total, 0, "the corpus is committed under \(Self.fuzzDirectory.path)")
    }

    /// The first crash the fuzzer found: an ack with bytes after its seq was read as if
    /// they weren't there. It is refused now.
    func testAckWithTrailingBytesIsRefused() {
        XCTAssertThrowsError(try ControlCodec.decodeAck(ControlCodec.ack(7) + [0]))
        XCTAssertThrowsError(try ControlCodec.decodeAck([0, 0, 0]))
        XCTAssertEqual(try ControlCodec.decodeAck(ControlCodec.ack(7)), 7)
    }
}
