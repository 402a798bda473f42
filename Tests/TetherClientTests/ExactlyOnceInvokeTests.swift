import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// Issue 11 item 18: an invoke whose connection drops between the request leaving and
/// its `started` answer arriving runs exactly once. The CLI retries with the same token
/// on a new connection; the runspace either rejoins the command the lost request started
/// or starts it now. Through the real TCP proxy in front of sshd, with the keeper.
final class ExactlyOnceInvokeTests: ResumeTestCase {
    /// Appends one line to `$1`, prints once on each stream, exits 5.
    static let command = "echo ran >> \"$1\"; echo out; echo err >&2; (exit 5)"

    func testInvokeWhoseStartedAnswerIsLostRunsOnceAndIsRejoined() throws {
        let ranLog = workDirectory + "/ran.log"
        let trigger = workDirectory + "/trigger"
        // A command that keeps the session busy until the trigger exists: the invoke below
        // attaches, then waits in the runspace's queue with its answer still to come.
        try check(["invoke", "--computer", "alpha", "--session-name", "s", "--in-disconnected-session",
                   "--", "while [ ! -e \"$1\" ]; do sleep 0.05; done", trigger])
        let before = proxy.statistics.bytesFromTarget
        let run = try spawnTether(["invoke", "--name", "s", "--", Self.command, ranLog], home: firstHome, label: "held")
        // The attach answer came back; from now on the host's answers stay in the proxy.
        try waitUntil("the invoke attached") { proxy.statistics.bytesFromTarget > before }
        proxy.holdReplies()
        try writeFile(trigger, "")
        try waitUntil("the command ran on the host") { !(Descriptors.readFile(ranLog) ?? []).isEmpty }
        proxy.cut()  // `started`, the output and the end are lost with the link

        XCTAssertEqual(try run.wait(timeout: 60), .exited(5), run.stderrText)
        assertRanOnce(run, ranLog: ranLog)
    }

    func testInvokeLostBeforeReachingTheHostRunsOnce() throws {
        let ranLog = workDirectory + "/ran.log"
        try check(["new", "alpha", "--name", "s"])
        proxy.stall()  // the request leaves the client and goes nowhere
        let run = try spawnTether(["invoke", "--name", "s", "--", Self.command, ranLog], home: firstHome, label: "lost")
        // The keeper relays the CLI's attach (a channel of its link) once the CLI is past
        // opening its connection: from there on a lost link is a lost request, which the
        // CLI retries. (Cut earlier — a slow CLI still opening — the open itself fails,
        // exit 255: another case, not this test's.)
        try waitUntil("the CLI's request went into the link") { try run.stderrText.isEmpty && keeperChannels() >= 1 }
        usleep(300_000)
        XCTAssertTrue((Descriptors.readFile(ranLog) ?? []).isEmpty, "nothing ran yet")
        proxy.cut()
        proxy.resume()

        XCTAssertEqual(try run.wait(timeout: 60), .exited(5), run.stderrText)
        // (Under load the request may not have left before the cut: either way, once.)
        assertRanOnce(run, ranLog: ranLog, reconnected: false)
    }

    /// Channels the keeper relays now, over all its links (`tether keeper --status`).
    private func keeperChannels() throws -> Int {
        let result = try tether(["keeper", "--status"], home: firstHome)
        guard result.status == .exited(0),
              let status = try JSONSerialization.jsonObject(with: Data(result.stdoutText.utf8)) as? [String: Any],
              let links = status["links"] as? [[String: Any]] else { return 0 }
        return links.compactMap { $0["channels"] as? Int }.reduce(0, +)
    }

    private func assertRanOnce(_ run: TetherProcess, ranLog: String, reconnected: Bool = true,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(String(decoding: Descriptors.readFile(ranLog) ?? [], as: UTF8.self), "ran\n",
                       "the command ran exactly once", file: file, line: line)
        XCTAssertEqual(run.stdoutText, "out\n", "its output shown once", file: file, line: line)
        let stderr = run.stderrText
        XCTAssertEqual(stderr.components(separatedBy: "err\n").count - 1, 1, stderr, file: file, line: line)
        guard reconnected else { return }
        XCTAssertTrue(stderr.contains("reconnecting…"), stderr, file: file, line: line)
        XCTAssertTrue(stderr.contains("tether: alpha: reconnected\n"), stderr, file: file, line: line)
        XCTAssertGreaterThanOrEqual(proxy.statistics.cut, 1, "the link was really cut", file: file, line: line)
    }
}
