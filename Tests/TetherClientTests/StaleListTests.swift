import XCTest
import Foundation
import TetherTestSupport

/// A client's list can hold sessions that are gone from the host (another client removed
/// them). Naming a computer asks it, so such entries leave the list instead of failing
/// the command — and a new session of the same name is found.
final class StaleListTests: TwoClientTestCase {
    func testAnotherClientsRemovalLeavesNoStaleEntryBehind() throws {
        XCTAssertEqual(try tether(["new", "alpha", "--name", "shared"], home: firstHome).status, .exited(0))
        // The second client sees it (it gets a local Id there)...
        let seen = try remoteSession("shared", home: secondHome)
        let oldInstance = try XCTUnwrap(seen["instanceId"] as? String)
        // ... the first removes it and makes a new one with the same name.
        XCTAssertEqual(try tether(["remove", "--name", "shared"], home: firstHome).status, .exited(0))
        let remade = try tether(["new", "alpha", "--name", "shared"], home: firstHome)
        XCTAssertEqual(remade.status, .exited(0), remade.stderrText)
        XCTAssertEqual(try tether(["disconnect", "--name", "shared"], home: firstHome).status, .exited(0))

        // The second connects to the session that exists, and only to it.
        let connected = try tether(["connect", "--computer", "alpha", "--name", "shared"], home: secondHome)
        XCTAssertEqual(connected.status, .exited(0), connected.stderrText)
        XCTAssertEqual(connected.stderrText, "")
        let mine = try getJSON(["--name", "shared"], home: secondHome)
        XCTAssertEqual(mine.count, 1, "\(mine)")
        XCTAssertNotEqual(mine.first?["instanceId"] as? String, oldInstance)
        XCTAssertEqual(mine.first?["state"] as? String, "Opened")
    }

    func testGetOnAComputerDropsEntriesTheHostNoLongerHas() throws {
        XCTAssertEqual(try tether(["new", "alpha", "--name", "brief"], home: firstHome).status, .exited(0))
        _ = try remoteSession("brief", home: secondHome)
        XCTAssertEqual(try tether(["remove", "--name", "brief"], home: firstHome).status, .exited(0))
        XCTAssertEqual(try getJSON(["--computer", "alpha", "--name", "brief"], home: secondHome).count, 0)
        // Gone from the second client's own list too (no stale row, no error).
        let own = try tether(["get", "--name", "brief", "--json"], home: secondHome)
        XCTAssertEqual(own.status, .exited(0), own.stderrText)
        let rows = try JSONSerialization.jsonObject(with: Data(own.stdoutText.utf8)) as? [Any]
        XCTAssertEqual(rows?.count, 0, own.stdoutText)
    }
}
