import Glibc
import TetherIO
import TetherProtocol
import XCTest

/// Sessions nobody uses for their idle timeout are removed, and say so afterwards.
final class IdleTimeoutTests: XCTestCase {
    private var host: TestHost!

    override func setUpWithError() throws { host = try TestHost() }
    override func tearDown() { host.tearDown() }

    func testIdleSessionIsRemovedAndLeavesATombstone() throws {
        host.environment["TETHER_MIN_IDLE_TIMEOUT"] = "1"
        let client = try host.subsystem()
        let idle = try client.create(CreateRequest(name: "idle", idleTimeout: 1))
        let busy = try client.create(CreateRequest(name: "attached", idleTimeout: 1))
        _ = try client.attach(channel: 1, busy.instanceID)

        waitUntil(timeout: 15, "the idle session to be removed") {
            (try? client.list(SessionFilter(name: "idle")))?.isEmpty ?? false
        }
        let pid = try XCTUnwrap(idle.runspacePID)
        waitUntil(timeout: 15, "its runspace to exit") { !self.host.runspacePIDs().contains(pid) }

        // Asked by id, the host explains what happened.
        let gone = try XCTUnwrap(try client.list(SessionFilter(instanceID: idle.instanceID)).first)
        XCTAssertEqual(gone.state, .closed)
        let reason = try XCTUnwrap(gone.reason)
        XCTAssertTrue(reason.hasPrefix("removed after idle timeout of 1s at "), reason)
        let claim = try XCTUnwrap(try client.request(.claim(instanceID: idle.instanceID, force: false)).failure)
        XCTAssertTrue(claim.message.contains("removed after idle timeout"), claim.message)

        // The attached one is not idle and stays.
        XCTAssertEqual(try client.session(busy.instanceID)?.state, .running)
        XCTAssertEqual(try client.invoke(channel: 1, "echo here").stdout, "here\n")

        // Once detached, its clock starts.
        XCTAssertEqual(try client.request(channel: 1, .detach), .done)
        waitUntil(timeout: 15, "the detached session to be removed") {
            (try? client.session(busy.instanceID))?.state == .closed
        }
    }

    func testBusySessionIsNotIdle() throws {
        host.environment["TETHER_MIN_IDLE_TIMEOUT"] = "1"
        let client = try host.subsystem()
        let session = try client.create(CreateRequest(name: "sleeper", idleTimeout: 1))
        _ = try client.attach(channel: 1, session.instanceID)
        // Detach while a command runs: busy, so not idle even with nobody attached.
        guard case .started = try client.request(channel: 1, .invoke(InvokeRequest(script: "sleep 3"))) else {
            return XCTFail("invoke failed")
        }
        XCTAssertEqual(try client.request(channel: 1, .detach), .done)
        waitUntil(timeout: 5, "the session to report busy") { (try? client.session(session.instanceID))?.busy == true }
        XCTAssertEqual(try client.session(session.instanceID)?.state, .running)
        waitUntil(timeout: 20, "the session to be removed after its command") {
            (try? client.session(session.instanceID))?.state == .closed
        }
    }
}
