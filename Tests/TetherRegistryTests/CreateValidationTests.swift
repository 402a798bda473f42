import Glibc
import TetherIO
import TetherProtocol
import XCTest

/// `create` refuses bad settings with messages that say what to change.
final class CreateValidationTests: XCTestCase {
    private var host: TestHost!

    override func setUpWithError() throws { host = try TestHost() }
    override func tearDown() { host.tearDown() }

    private func createFailure(_ request: CreateRequest, file: StaticString = #filePath, line: UInt = #line) throws -> ErrorBody {
        let client = try host.subsystem()
        let response = try client.request(.create(request))
        return try XCTUnwrap(response.failure, "expected a failure, got \(response)", file: file, line: line)
    }

    func testUnknownConfiguration() throws {
        let error = try createFailure(CreateRequest(configuration: "powershell"))
        XCTAssertEqual(error.code, .badRequest)
        XCTAssertTrue(error.message.contains("unknown session configuration 'powershell'"), error.message)
        XCTAssertTrue(error.message.contains("bash"), error.message)
    }

    func testIdleTimeoutBelowTheMinimum() throws {
        let error = try createFailure(CreateRequest(idleTimeout: 30))
        XCTAssertEqual(error.code, .badRequest)
        XCTAssertTrue(error.message.contains("below this host's minimum of 60s"), error.message)
    }

    func testLoweredMinimumSaysWhereItCameFrom() throws {
        host.environment["TETHER_MIN_IDLE_TIMEOUT"] = "5"
        let error = try createFailure(CreateRequest(idleTimeout: 2))
        XCTAssertTrue(error.message.contains("minimum of 5s (set by TETHER_MIN_IDLE_TIMEOUT=5)"), error.message)
    }

    func testHostConfigFileLowersTheMinimum() throws {
        try host.paths.prepare()
        let config = Array(#"{"minimumIdleTimeout": 10}"#.utf8)
        let fd = open(host.paths.hostConfigFile, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        XCTAssertEqual(config.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }, config.count)
        close(fd)
        let error = try createFailure(CreateRequest(idleTimeout: 3))
        XCTAssertTrue(error.message.contains("minimum of 10s (set by \(host.paths.hostConfigFile))"), error.message)
    }

    func testBadNames() throws {
        for (name, words) in [("", "must not be empty"), ("web*", "wildcard"), ("a\u{7}b", "control characters"),
                              (String(repeating: "n", count: 200), "limit is 128")] {
            let error = try createFailure(CreateRequest(name: name))
            XCTAssertEqual(error.code, .badRequest)
            XCTAssertTrue(error.message.contains(words), "\(name): \(error.message)")
        }
    }

    func testBadBufferLimit() throws {
        let error = try createFailure(CreateRequest(bufferLimit: 0))
        XCTAssertTrue(error.message.contains("buffer limit of 0 bytes is below the minimum of 1024 bytes"), error.message)
        let tiny = try createFailure(CreateRequest(bufferLimit: 10))
        XCTAssertTrue(tiny.message.contains("buffer limit of 10 bytes is below the minimum"), tiny.message)
    }

    func testUnknownInstanceIDs() throws {
        let client = try host.subsystem()
        let id = "00000000-0000-0000-0000-000000000000"
        for request in [Request.claim(instanceID: id, force: false), .remove(instanceID: id, force: nil),
                        .release(instanceID: id, idleTimeout: nil, outputBuffering: nil)] {
            let error = try XCTUnwrap(try client.request(request).failure)
            XCTAssertEqual(error.code, .notFound)
            XCTAssertEqual(error.message, "no session with instance id \(id) on this host")
        }
        let attach = try client.request(channel: 1, .attach(instanceID: id, force: false, receive: false))
        XCTAssertEqual(attach.failure?.code, .notFound)
        XCTAssertEqual(try client.list(SessionFilter(instanceID: id)), [])
    }
}
