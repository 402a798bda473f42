import XCTest
@testable import TetherProtocol

/// The binary `invoke` request and `started` answer: round trips, and every way a peer
/// could get them wrong ends in a clear `badPayload`/`truncated`, never a crash.
final class CommandCodecTests: XCTestCase {
    func testInvokeRoundTripsInEveryShape() throws {
        let invokes = [
            InvokeRequest(script: "true"),
            InvokeRequest(script: "", arguments: [], stdin: false, wait: false),
            InvokeRequest(script: "echo \"$@\" — ünïcødé", arguments: ["a b", "", "'c'\n"], stdin: true, wait: true, waitTimeout: 2.5),
            InvokeRequest(script: String(repeating: "x", count: 100_000), arguments: Array(repeating: "y", count: 500), waitTimeout: 0),
            InvokeRequest(script: "date >> log", token: 0xfeed_beef_0123_4567),
            InvokeRequest(script: "true", stdin: true, waitTimeout: 1, token: 0),
            InvokeRequest(script: "vim", stdin: true, terminal: TerminalRequest(term: "xterm-256color", size: TerminalSize(rows: 50, columns: 200))),
            InvokeRequest(script: "top", arguments: ["-b"], waitTimeout: 1,
                          terminal: TerminalRequest(term: "", size: TerminalSize(rows: .max, columns: 0))),
        ]
        for (index, invoke) in invokes.enumerated() {
            let payload = ControlCodec.request(id: UInt32(index), .invoke(invoke))
            XCTAssertEqual(payload[4], CommandCodec.invokeTag, "binary, not JSON")
            let (id, decoded) = try ControlCodec.decodeRequest(payload)
            XCTAssertEqual(id, UInt32(index))
            XCTAssertEqual(decoded, .invoke(invoke))
        }
    }

    func testResizeIsJSON() throws {
        let payload = ControlCodec.request(id: 3, .resize(TerminalSize(rows: 40, columns: 120)))
        XCTAssertEqual(payload[4], UInt8(ascii: "{"))
        let (_, decoded) = try ControlCodec.decodeRequest(payload)
        XCTAssertEqual(decoded, .resize(TerminalSize(rows: 40, columns: 120)))
    }

    func testStartedRoundTripsAndOtherAnswersStayJSON() throws {
        let payload = ControlCodec.response(id: 9, .started(commandID: 1 << 40))
        XCTAssertEqual(payload.count, 4 + 1 + 8)
        let (id, decoded) = try ControlCodec.decodeResponse(payload)
        XCTAssertEqual(id, 9)
        XCTAssertEqual(decoded, .started(commandID: 1 << 40))
        XCTAssertEqual(ControlCodec.response(id: 9, .done)[4], UInt8(ascii: "{"))
    }

    func testEveryTruncationOfAnInvokeIsAnError() {
        let payload = ControlCodec.request(id: 1, .invoke(InvokeRequest(script: "echo hi", arguments: ["one", "two"], waitTimeout: 3, token: 7)))
        for length in 4..<payload.count {
            XCTAssertThrowsError(try ControlCodec.decodeRequest(Array(payload[..<length])), "cut at \(length)") { error in
                XCTAssertEqual((error as? ProtocolError)?.code, .badPayload, "cut at \(length): \(error)")
            }
        }
    }

    func testLiesAndGarbageAreBadPayloads() {
        func invokeBody(_ build: (inout ByteWriter) -> Void) -> [UInt8] {
            var w = ByteWriter()
            w.write(UInt32(7))
            w.write(CommandCodec.invokeTag)
            build(&w)
            return w.bytes
        }
        let cases: [(String, [UInt8])] = [
            ("unknown flags", invokeBody { $0.write(UInt8(0x80)); $0.write(UInt32(0)); $0.write(UInt32(0)) }),
            ("script longer than the payload", invokeBody { $0.write(UInt8(0)); $0.write(UInt32(1000)); $0.write(contentsOf: [0x61]) }),
            ("a billion arguments", invokeBody { $0.write(UInt8(0)); $0.write(UInt32(0)); $0.write(UInt32(1_000_000_000)) }),
            ("invalid UTF-8", invokeBody { $0.write(UInt8(0)); $0.write(UInt32(2)); $0.write(contentsOf: [0xff, 0xfe]); $0.write(UInt32(0)) }),
            ("bytes after the end", invokeBody { $0.write(UInt8(0)); $0.write(UInt32(0)); $0.write(UInt32(0)); $0.write(UInt8(1)) }),
            ("unknown tag", [0, 0, 0, 7, 0x7f]),
            ("no body", [0, 0, 0, 7]),
        ]
        for (what, payload) in cases {
            XCTAssertThrowsError(try ControlCodec.decodeRequest(payload), what) { error in
                XCTAssertEqual((error as? ProtocolError)?.code, .badPayload, "\(what): \(error)")
            }
        }
        var started = ByteWriter()
        started.write(UInt32(1)); started.write(CommandCodec.startedTag); started.write(UInt32(5))
        XCTAssertThrowsError(try ControlCodec.decodeResponse(started.bytes))
    }
}
