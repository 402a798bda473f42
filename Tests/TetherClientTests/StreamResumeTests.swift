import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// The other streams across a cut link (a real `TCPProxy` in front of sshd, as in
/// `ResumeTests`): warnings and progress are records like stdout, so a resumed invoke and
/// a later receive get every one exactly once, in order.
final class StreamResumeTests: ResumeTestCase {
    /// Three rounds of output, a warning and progress; a pause the test cuts the link in
    /// (READY made, waits for GO); three more rounds.
    private var script: String {
        let round = "echo \"line $i\"; tether-warning \"w$i\"; tether-progress $((i * 10)) Loop"
        return "for i in 1 2 3; do \(round); done; touch '\(workDirectory)/READY'; " +
            "until [ -e '\(workDirectory)/GO' ]; do sleep 0.05; done; for i in 4 5 6; do \(round); done"
    }

    private func waitForPause() throws {
        try waitUntil("the command reached its pause") { FileManager.default.fileExists(atPath: workDirectory + "/READY") }
    }

    private func go() throws { try writeFile(workDirectory + "/GO", "") }

    func testAResumedInvokeGetsEveryStreamRecordOnceInOrder() throws {
        try check(["new", "alpha", "--name", "s"])
        let run = try spawnTether(["invoke", "--name", "s", "--json", "--", script], home: firstHome, label: "json")
        try waitForPause()
        try cutLink(for: 1)
        try go()
        XCTAssertEqual(try run.wait(timeout: 60), .exited(0), run.stderrText)
        XCTAssertTrue(run.stderrText.contains("tether: alpha: reconnected\n"), run.stderrText)
        let parsed = try JSONSerialization.jsonObject(with: Data(run.stdoutText.utf8))
        let records = try XCTUnwrap((parsed as? [[String: Any]])?.first?["records"] as? [[String: Any]], run.stdoutText)
        let seen = records.map { record -> String in
            switch record["stream"] as? String {
            case "progress": "progress \(record["percent"] ?? "?")"
            case let stream?: "\(stream) \(record["text"] ?? "?")"
            case nil: "?"
            }
        }
        let expected = (1...6).flatMap { ["stdout line \($0)\n", "warning w\($0)", "progress \($0 * 10)"] }
        XCTAssertEqual(seen, expected)
        XCTAssertGreaterThanOrEqual(proxy.statistics.cut, 1, "the link was really cut")
    }

    func testWhatAnInvokeCutOffDidNotShowTheNextReceiveShows() throws {
        try check(["new", "alpha", "--name", "s"])
        let run = try spawnTether(["invoke", "--name", "s", "--reconnect-timeout", "0", "--", script], home: firstHome, label: "cut")
        try waitForPause()
        try waitUntil("the first warnings shown") { run.stderrText.contains("WARNING: w3\n") }
        proxy.cut()
        XCTAssertEqual(try run.wait(timeout: 20), .exited(255), run.stderrText)
        try go()
        let rest = try tether(["receive", "--name", "s"], timeout: 30)
        XCTAssertEqual(rest.status, .exited(0), rest.stderrText)
        func warnings(_ text: String) -> [Int] {
            text.split(separator: "\n").compactMap { $0.hasPrefix("WARNING: w") ? Int($0.dropFirst(10)) : nil }
        }
        let context = "\(run.stderrText) | \(rest.stderrText)"
        assertNothingLost(shown: warnings(run.stderrText), received: warnings(rest.stderrText), context)
        assertNothingLost(shown: lineNumbers(run.stdoutText), received: lineNumbers(rest.stdoutText), context)
    }

    /// The invoke showed 1… in order, and receive continues in order to 6 from no later
    /// than the first record the invoke did not show. The overlap — records shown but
    /// whose acknowledgement was still on its way when the link went — may repeat (the
    /// client acknowledges only after showing; ResumeTests' rule for stdout); nothing may
    /// be missing.
    private func assertNothingLost(shown: [Int], received: [Int], _ context: String,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(shown, Array((1...6).prefix(shown.count)), "the invoke's part is in order: \(context)", file: file, line: line)
        XCTAssertGreaterThanOrEqual(shown.count, 3, "the invoke showed the first three rounds: \(context)", file: file, line: line)
        guard let start = received.first else {
            return XCTFail("receive showed nothing of rounds 4–6: \(context)", file: file, line: line)
        }
        XCTAssertEqual(received, Array(start...6), "receive continues in order to the end: \(context)", file: file, line: line)
        XCTAssertLessThanOrEqual(start, shown.count + 1, "nothing lost between the two: \(context)", file: file, line: line)
    }
}
