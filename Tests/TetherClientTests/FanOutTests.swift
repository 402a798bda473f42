import XCTest
import Foundation
import TetherTestSupport

/// Two fixtures are two computers: commands fan out concurrently, output tagged per
/// computer, and the exit status summarises all.
final class FanOutTests: CLITestCase {
    override var computerCount: Int { 2 }

    func testTemporarySessionsOnTwoComputersAreTaggedAndRemoved() throws {
        let result = try tether(["invoke", "--computer", "alpha,beta", "--", "echo hello; echo oops >&2; printf partial"])
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        let lines = Set(result.stdoutText.split(separator: "\n").map(String.init))
        XCTAssertEqual(lines, ["[alpha] hello", "[alpha] partial", "[beta] hello", "[beta] partial"])
        XCTAssertEqual(Set(result.stderrText.split(separator: "\n").map(String.init)), ["[alpha] oops", "[beta] oops"])
        // Temporary sessions are gone afterwards.
        XCTAssertEqual(try getJSON(["--computer", "alpha,beta"]).count, 0)
        XCTAssertEqual(try getJSON().count, 0)
    }

    func testNamedSessionsOnTwoComputersAndExitStatus() throws {
        let table = try check(["new", "alpha,beta", "--name", "web"])
        XCTAssertTrue(table.contains("alpha") && table.contains("beta"), table)
        XCTAssertEqual(try getJSON().map { $0["computerName"] as? String }.sorted { ($0 ?? "") < ($1 ?? "") }, ["alpha", "beta"])
        try check(["invoke", "--name", "web", "--", "marker=set"])
        let result = try tether(["invoke", "--name", "web", "--", "echo $marker; sh -c \"exit $1\"", "3"])
        XCTAssertEqual(result.status, .exited(3), result.stderrText)
        XCTAssertEqual(Set(result.stdoutText.split(separator: "\n").map(String.init)), ["[alpha] set", "[beta] set"])

        let hidden = try check(["invoke", "--name", "web", "--hide-computer-name", "--", "echo same"])
        XCTAssertEqual(hidden, "same\nsame\n")

        let json = try tether(["invoke", "--name", "web", "--json", "--", "echo j"])
        XCTAssertEqual(json.status, .exited(0), json.stderrText)
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdoutText.utf8)) as? [[String: Any]])
        XCTAssertEqual(parsed.count, 2)
        XCTAssertEqual(parsed.compactMap { $0["stdout"] as? String }, ["j\n", "j\n"])
        XCTAssertEqual(parsed.compactMap { $0["exitStatus"] as? Int }, [0, 0])
    }

    func testOneUnreachableComputerIsReportedAndTheOtherStillListed() throws {
        try check(["new", "alpha,beta", "--name", "s"])
        beta.stop()
        let result = try tether(["get", "--json"], timeout: 60)
        XCTAssertEqual(result.status, .exited(255), result.stderrText)
        XCTAssertTrue(result.stderrText.hasPrefix("tether: beta"), result.stderrText)
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdoutText.utf8)) as? [[String: Any]])
        let sessions = parsed.filter { $0["error"] is NSNull }
        let states = Dictionary(uniqueKeysWithValues: sessions.map { ($0["computerName"] as! String, $0["state"] as! String) })
        XCTAssertEqual(states, ["alpha": "Opened", "beta": "Unknown"])
        // beta's failure is in the array too, as an error object (docs/json.md).
        let failed = parsed.filter { !($0["error"] is NSNull) }
        XCTAssertEqual(failed.map { $0["computerName"] as? String }, ["beta"])
        XCTAssertEqual((failed.first?["error"] as? [String: Any])?["exitStatus"] as? Int, 255)
    }
}
