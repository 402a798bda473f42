import XCTest
import Foundation
import TetherTestSupport

/// `--name`, `--id` and `--instance-id` take several values, repeated or comma-separated
/// (PowerShell's `-Name a,b`); a selector that matches nothing is an error for the verbs
/// that act, and an empty list for `get`.
final class SelectorTests: CLITestCase {
    func names(_ rows: [[String: Any]]) -> [String] { rows.compactMap { $0["name"] as? String }.sorted() }

    func testRepeatedAndCommaSeparatedSelectorsSelectEveryValue() throws {
        for name in ["a", "b", "c"] { try check(["new", "alpha", "--name", name]) }
        XCTAssertEqual(names(try getJSON(["--name", "a", "--name", "b"])), ["a", "b"])
        XCTAssertEqual(names(try getJSON(["--name", "a,b"])), ["a", "b"])
        XCTAssertEqual(names(try getJSON(["--computer", "alpha", "--name", "a,c"])), ["a", "c"])
        XCTAssertEqual(names(try getJSON(["--id", "1", "--id", "3"])), ["a", "c"])
        let all = try getJSON()
        let idOf = { (name: String) in all.first { $0["name"] as? String == name }?["instanceId"] as? String ?? "?" }
        XCTAssertEqual(names(try getJSON(["--instance-id", "\(idOf("b")),\(idOf("c"))"])), ["b", "c"])

        // A verb that acts, on both: each session runs the command ([computer] prefixes).
        let out = try check(["invoke", "--name", "a", "--name", "c", "--", "echo hi"])
        XCTAssertEqual(out, "[alpha] hi\n[alpha] hi\n")
        try check(["disconnect", "--name", "a,b"])
        let states = Dictionary(uniqueKeysWithValues: try getJSON().map { ($0["name"] as? String ?? "", $0["state"] as? String ?? "") })
        XCTAssertEqual(states, ["a": "Disconnected", "b": "Disconnected", "c": "Opened"])
        try check(["connect", "--computer", "alpha", "--name", "a,b"])
        try check(["remove", "--instance-id", idOf("a"), "--instance-id", idOf("b")])
        XCTAssertEqual(names(try getJSON()), ["c"])
    }

    func testASelectorThatMatchesNothingIsAnErrorForVerbsThatAct() throws {
        try check(["new", "alpha", "--name", "real"])
        for verb in [["invoke"], ["connect"], ["disconnect"], ["receive"], ["remove"]] {
            for selector in [["--name", "ghost"], ["--computer", "alpha", "--name", "ghost,phantom"]] {
                var arguments = verb + selector
                if verb == ["invoke"] { arguments += ["--", "true"] }
                let result = try tether(arguments)
                XCTAssertEqual(result.status, .exited(1), "\(arguments): \(result.stderrText)")
                XCTAssertTrue(result.stderrText.contains("no session"), "\(arguments): \(result.stderrText)")
            }
        }
        // One of two names missing: the verb acts on the other and still says so (exit 1).
        let partly = try tether(["invoke", "--name", "real,ghost", "--", "echo ran"])
        XCTAssertEqual(partly.status, .exited(1), partly.stderrText)
        XCTAssertEqual(partly.stdoutText, "ran\n")
        XCTAssertTrue(partly.stderrText.contains("no session named ghost"), partly.stderrText)
        // get lists what matches: nothing, and that is not an error (Get-PSSession).
        let none = try tether(["get", "--name", "ghost"])
        XCTAssertEqual(none.status, .exited(0), none.stderrText)
        XCTAssertEqual(none.stdoutText, "")
        XCTAssertEqual(names(try getJSON()), ["real"], "nothing was removed by the failed selectors")
    }
}
