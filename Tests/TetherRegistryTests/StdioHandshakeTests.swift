import Glibc
import TetherIO
import TetherProtocol
import XCTest

/// The subsystem's side of the handshake: hello first, versions checked, clear errors.
final class StdioHandshakeTests: XCTestCase {
    private var host: TestHost!

    override func setUpWithError() throws { host = try TestHost() }
    override func tearDown() { host.tearDown() }

    func testHelloIsAnsweredByTheHost() throws {
        let client = try host.subsystem(hello: false)
        let hello = try client.hello()
        XCTAssertEqual(hello.role, .host)
        XCTAssertEqual(hello.user, Environment.userName())
        XCTAssertEqual(hello.hostname, Environment.hostName())
        // A client that only says hello starts no registry (it is started on demand).
        XCTAssertEqual(host.registryPIDs(), [])
        client.closeInput()
        XCTAssertEqual(try client.waitForExit(), .exited(0))
    }

    func testVersionMismatchNamesBothVersions() throws {
        let client = try host.subsystem(hello: false)
        try client.send(Frame(type: .hello, channel: 0,
                              payload: Hello(role: .client, clientID: "x").payload(version: 99)))
        let error = try client.nextError()
        XCTAssertEqual(error.channel, 0)
        XCTAssertEqual(error.body.code, .versionMismatch)
        XCTAssertTrue(error.body.message.contains("99"), error.body.message)
        XCTAssertTrue(error.body.message.contains("this side speaks \(ProtocolRange.ours)"), error.body.message)
        XCTAssertEqual(try client.waitForExit(), .exited(2))
    }

    func testBadMagicIsABadFrame() throws {
        let client = try host.subsystem(hello: false)
        try client.send(Frame(type: .hello, channel: 0, payload: Array("NOTTETHER-at-all".utf8)))
        let error = try client.nextError()
        XCTAssertEqual(error.body.code, .badFrame)
        XCTAssertTrue(error.body.message.contains("magic"), error.body.message)
        XCTAssertEqual(try client.waitForExit(), .exited(2))
    }

    func testFirstFrameMustBeHello() throws {
        let client = try host.subsystem(hello: false)
        try client.send(Frame(type: .request, channel: 0, payload: ControlCodec.request(id: 1, .ping)))
        let error = try client.nextError()
        XCTAssertEqual(error.body.code, .badFrame)
        XCTAssertTrue(error.body.message.contains("expected hello"), error.body.message)
        XCTAssertEqual(try client.waitForExit(), .exited(2))
    }

    func testHelloMustComeFromAClient() throws {
        let client = try host.subsystem(hello: false)
        try client.send(Frame(type: .hello, channel: 0, payload: Hello(role: .registry).payload()))
        let error = try client.nextError()
        XCTAssertEqual(error.body.code, .badFrame)
        XCTAssertTrue(error.body.message.contains("role client"), error.body.message)
    }

    func testEndOfInputEndsTheSubsystemCleanly() throws {
        let client = try host.subsystem()
        XCTAssertEqual(try client.request(.ping), .pong)
        client.closeInput()
        XCTAssertEqual(try client.waitForExit(), .exited(0))
        // The registry it started lives on.
        XCTAssertEqual(host.registryPIDs().count, 1)
    }
}
