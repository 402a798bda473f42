import Foundation
import XCTest
@testable import TetherProtocol

/// The hand-written `sessions` reply coder must agree with JSONEncoder/JSONDecoder in both
/// directions (old and new peers mix), and refuse bad input with a clear error.
final class SessionListCodingTests: XCTestCase {
    static let plain = SessionInfo(
        instanceID: "3f2a9c4e-0b1d-4e5f-8a7b-123456789abc", name: "deploy", configuration: "bash",
        state: .running, holder: nil, busy: false, createdAt: 1_795_314_148.0181868,
        lastUsedAt: 1_795_314_200.5, idleTimeout: 7200, outputBuffering: .block, bufferLimit: 16 << 20)

    static let everything = SessionInfo(
        instanceID: "aaaaaaaa-0b1d-4e5f-8a7b-123456789abc",
        name: "quote\" back\\slash /slash tab\t nl\n cr\r bell\u{07} del\u{7f} é 日本 🎉",
        configuration: "bash", state: .broken,
        holder: Holder(clientID: "c1d2", clientHost: "laptop \"x\"", since: 1.0e-7),
        busy: true, createdAt: 0, lastUsedAt: 123_456_789_012.25, idleTimeout: 1e20,
        outputBuffering: .drop, bufferLimit: Int.max, reason: "bash died of signal 9 (Killed)",
        exitCode: -1, runspacePID: Int32.max)

    static let samples = [plain, everything,
                          SessionInfo(instanceID: "x", name: "", configuration: "", state: .closed, holder: nil,
                                      busy: false, createdAt: -5.5, lastUsedAt: 0.1 + 0.2, idleTimeout: 60,
                                      outputBuffering: .block, bufferLimit: 0, reason: "", exitCode: 0)]

    private func foundationJSON(_ response: Response) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(response))
    }

    func testRoundTrip() throws {
        for infos in [[], Self.samples, Array(repeating: Self.plain, count: 1000)] {
            let payload = ControlCodec.response(id: 42, .sessions(infos))
            let (id, response) = try ControlCodec.decodeResponse(payload)
            XCTAssertEqual(id, 42)
            XCTAssertEqual(response, .sessions(infos))
        }
    }

    func testFoundationReadsWhatWeWrite() throws {
        let bytes = SessionListCoding.encode(Self.samples)
        XCTAssertEqual(try JSONDecoder().decode(Response.self, from: Data(bytes)), .sessions(Self.samples))
    }

    func testWeReadWhatFoundationWrites() throws {
        let bytes = try foundationJSON(.sessions(Self.samples))
        XCTAssertEqual(try SessionListCoding.decodeIfSessions(bytes), Self.samples)
    }

    func testSameBytesAsFoundationForPlainSessions() throws {
        // Doubles and escapes may be spelled differently; an ordinary session is byte for byte.
        XCTAssertEqual(String(decoding: SessionListCoding.encode([Self.plain]), as: UTF8.self),
                       String(decoding: try foundationJSON(.sessions([Self.plain])), as: UTF8.self))
    }

    func testOtherResponsesAreLeftToWireJSON() throws {
        for response: Response in [.pong, .done, .session(Self.plain), .failure(ErrorBody(.notFound, "no"))] {
            XCTAssertNil(try SessionListCoding.decodeIfSessions(try foundationJSON(response)))
            let (_, decoded) = try ControlCodec.decodeResponse(ControlCodec.response(id: 1, response))
            XCTAssertEqual(decoded, response)
        }
    }

    func testAcceptsAnyKeyOrderWhitespaceUnknownKeysAndNulls() throws {
        let json = """
         { "sessions" : { "future" : [1, {"a": [true, null]}], "_0" : [ {
           "state": "closed", "name": "n\\u00e9\\ud83c\\udf89", "instanceID": "i", "configuration": "bash",
           "holder": null, "reason": null, "exitCode": 3.0, "runspacePID": null, "unknown": {"x": "y"},
           "busy": false, "bufferLimit": 1e3, "createdAt": 1, "lastUsedAt": 2.5E+1, "idleTimeout": 60,
           "outputBuffering": "drop" } ] } }\t\r\n
        """
        let infos = try XCTUnwrap(try SessionListCoding.decodeIfSessions(Array(json.utf8)))
        XCTAssertEqual(infos, [SessionInfo(instanceID: "i", name: "né🎉", configuration: "bash", state: .closed,
                                           holder: nil, busy: false, createdAt: 1, lastUsedAt: 25, idleTimeout: 60,
                                           outputBuffering: .drop, bufferLimit: 1000, exitCode: 3)])
    }

    func testTruncatedInputIsAClearError() throws {
        let payload = ControlCodec.response(id: 7, .sessions(Self.samples))
        // Every cut after the reply's first key must fail, and say what it expected.
        let firstKeyEnd = 4 + Array(#"{"sessions":"#.utf8).count
        for cut in firstKeyEnd..<payload.count {
            XCTAssertThrowsError(try ControlCodec.decodeResponse(Array(payload[..<cut])), "cut at \(cut)") { error in
                guard case .badPayload(let why)? = error as? ProtocolError else { return XCTFail("\(error)") }
                XCTAssertTrue(why.hasPrefix("sessions reply: "), why)
            }
        }
    }

    func testGarbageIsAClearError() throws {
        let cases: [(String, String)] = [
            (#"{"sessions":{"_0":[{"name":"x"}]}}"#, "session without"),
            (#"{"sessions":{"_0":[1]}}"#, "expected '{'"),
            (#"{"sessions":{"_0":[],}}"#, "expected a string"),
            (#"{"sessions":{}}"#, #"no "_0" list"#),
            (#"{"sessions":{"_0":[]}} x"#, "unexpected bytes after the value"),
            (#"{"sessions":{"_0":[]},"done":{}}"#, "exactly one key"),
            (#"{"sessions":{"_0":[{"state":"dancing"}]}}"#, #"unknown session state "dancing""#),
            (#"{"sessions":{"_0":[{"busy":"yes"}]}}"#, "expected true or false"),
            (#"{"sessions":{"_0":[{"bufferLimit":1.5}]}}"#, "not a Int"),
            (#"{"sessions":{"_0":[{"bufferLimit":99999999999999999999}]}}"#, "not a Int"),
            (#"{"sessions":{"_0":[{"createdAt":01}]}}"#, "expected ',' or '}'"),
            (#"{"sessions":{"_0":[{"createdAt":1e999}]}}"#, "out of range"),
            (#"{"sessions":{"_0":[{"name":"\q"}]}}"#, "unknown escape"),
            (#"{"sessions":{"_0":[{"name":"\ud800"}]}}"#, "unpaired surrogate"),
            ("{\"sessions\":{\"_0\":[{\"name\":\"a\u{01}\"}]}}", "raw control character"),
            (String(repeating: "[", count: 100), "unknown body tag"),  // not JSON at all
            (#"{"sessions":{"x":"# + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}}",
             "nested deeper"),
        ]
        for (json, expected) in cases {
            var payload: [UInt8] = [0, 0, 0, 1]
            payload += Array(json.utf8)
            XCTAssertThrowsError(try ControlCodec.decodeResponse(payload), json) { error in
                guard case .badPayload(let why)? = error as? ProtocolError else { return XCTFail("\(json): \(error)") }
                XCTAssertTrue(why.contains(expected), "\(json): \(why)")
            }
        }
    }
}
