import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// "A client never acknowledges what it could not deliver": output is acknowledged only
/// once written to the CLI's stdout/stderr — a reader that went away (`| head`), a full
/// device (`/dev/full`) or a killed CLI holding a partial line leaves the rest on the
/// host for the next `receive`.
final class OutputDeliveryTests: CLITestCase {
    /// Runs a bash script with `$T` = the tether binary and this test's client home.
    func shell(_ script: String, timeout: Double = 60) throws -> CommandResult {
        var environment = Spawn.currentEnvironment().filter {
            !$0.hasPrefix("TETHER_HOME=") && !$0.hasPrefix("TETHER_SSH_CONFIG=") && !$0.hasPrefix("TETHER_TRANSPORT=")
        }
        environment += ["TETHER_HOME=\(tetherHome)", "TETHER_SSH_CONFIG=\(sshConfigPath)", "T=\(tetherPath)"]
        if let transport = Environment.get("TETHER_TEST_TRANSPORT") { environment.append("TETHER_TRANSPORT=\(transport)") }
        return try Processes.run("/bin/bash", ["-c", script], environment: environment, timeout: timeout)
    }

    /// `text` must be exactly the end of `seq 1 <last>`'s output: what a reader got after
    /// the writes that were acknowledged. Returns how many bytes of that output came
    /// before it (nil if `text` is not such an end). Acknowledgement is by record and a
    /// record may end mid-line (a 64 KiB pipe fills at byte 65,536, inside "12774\n"),
    /// so the text may start with the rest of a line — "4\n12775\n…" — and is compared
    /// as bytes, not parsed as whole lines.
    func assertEndOfSeq(_ text: String, last: Int, file: StaticString = #filePath, line: UInt = #line) -> Int? {
        let whole = Self.seqOutput(through: last)
        let rest = Array(text.utf8)
        guard !rest.isEmpty else {
            XCTFail("no output at all (everything was lost)", file: file, line: line)
            return nil
        }
        guard rest.count <= whole.count, whole.suffix(rest.count).elementsEqual(rest) else {
            XCTFail("not exactly the end of seq 1 \(last): \(rest.count) bytes starting \(text.prefix(40).debugDescription)",
                    file: file, line: line)
            return nil
        }
        return whole.count - rest.count
    }

    /// What `seq 1 <last>` prints.
    static func seqOutput(through last: Int) -> [UInt8] {
        Array((1...last).map { "\($0)\n" }.joined().utf8)
    }

    /// More bytes of `seq`'s output than a 64 KiB pipe holds (what `head` may leave
    /// unread): its first 20,000 lines.
    static let pipeful = seqOutput(through: 20_000).count

    /// Journaled, unread output: `seq 1 100000` in a released session named `name`.
    func sessionWithUnreadLines(_ name: String) throws {
        try check(["invoke", "--computer", "alpha", "--in-disconnected-session", "--session-name", name,
                   "--", "seq 1 100000"])
    }

    func testReceiveIntoHeadStopsQuietlyAndLeavesTheRestForTheNextReceive() throws {
        try sessionWithUnreadLines("unread")
        let piped = try shell("\"$T\" receive --computer alpha --name unread | head -3; echo \"status=${PIPESTATUS[0]}\" >&2")
        XCTAssertEqual(piped.stdoutText, "1\n2\n3\n")
        // Stopped by SIGPIPE like any tool whose reader left, and without a word.
        XCTAssertEqual(piped.stderrText, "status=141\n")
        // What was not written stays: the next receive gets every line after what went
        // into the pipe (written, so acknowledged: at most the pipe's 64 KiB, ~12,000
        // lines, that head never read).
        let rest = try check(["receive", "--computer", "alpha", "--name", "unread"])
        XCTAssertLessThanOrEqual(assertEndOfSeq(rest, last: 100_000) ?? .max, Self.pipeful)
    }

    func testReceiveToAFullDeviceSaysSoAndAcknowledgesNothing() throws {
        try sessionWithUnreadLines("full")
        let full = try shell("\"$T\" receive --computer alpha --name full > /dev/full")
        XCTAssertEqual(full.status, .exited(1), full.stderrText)
        XCTAssertTrue(full.stderrText.contains("cannot write to standard output: No space left on device"), full.stderrText)
        XCTAssertEqual(assertEndOfSeq(try check(["receive", "--name", "full"]), last: 100_000), 0)
    }

    func testInvokeIntoHeadOrAFullDeviceKeepsTheUnwrittenOutput() throws {
        try check(["new", "alpha", "--name", "cmd"])
        let piped = try shell("\"$T\" invoke --name cmd -- 'seq 1 100000' | head -3; echo \"status=${PIPESTATUS[0]}\" >&2")
        XCTAssertEqual(piped.stdoutText, "1\n2\n3\n")
        XCTAssertEqual(piped.stderrText, "status=141\n")
        XCTAssertLessThanOrEqual(assertEndOfSeq(try check(["receive", "--name", "cmd"]), last: 100_000) ?? .max,
                                 Self.pipeful)

        let full = try shell("\"$T\" invoke --name cmd -- 'seq 1 100000' > /dev/full")
        XCTAssertEqual(full.status, .exited(1), full.stderrText)
        XCTAssertTrue(full.stderrText.contains("No space left on device"), full.stderrText)
        XCTAssertEqual(assertEndOfSeq(try check(["receive", "--name", "cmd"]), last: 100_000), 0)
    }

    /// Several sessions: every line gets `[computer] `, and a line longer than the 64 KiB
    /// a prefixer holds back still comes out whole, never cut by a newline or another
    /// session's line.
    func testPrefixedLinesLongerThan64KiBComeOutWhole() throws {
        try check(["new", "alpha", "--name", "long1"])
        try check(["new", "alpha", "--name", "long2"])
        let out = try check(["invoke", "--name", "long*", "--",
                             "for i in 1 2 3; do echo short$i; head -c 300000 /dev/zero | tr '\\0' x; echo; done"])
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertEqual(lines.count, 12, "lines: \(lines.map { $0.prefix(20) })")
        for line in lines {
            XCTAssertTrue(line.hasPrefix("[alpha] "), String(line.prefix(40)))
            let body = line.dropFirst("[alpha] ".count)
            XCTAssertTrue(body.hasPrefix("short") && body.count == 6 || body == Substring(String(repeating: "x", count: 300_000)),
                          "a line cut or mixed: \(body.prefix(20))… (\(body.count) bytes)")
        }
    }

    /// A partial line waits for its newline before it is written with its prefix; until
    /// then it is not acknowledged, so a CLI killed meanwhile loses nothing.
    func testAHeldPartialLineIsNotAcknowledgedBeforeItIsWritten() throws {
        try check(["new", "alpha", "--name", "part1"])
        try check(["new", "alpha", "--name", "part2"])
        // The stderr line comes after the partial stdout line: once it is printed, the
        // partial line has reached the CLI too (one session's records arrive in order).
        let cli = try startTether(["invoke", "--name", "part*", "--",
                                   "printf 'partial-'; sleep 0.5; echo marker >&2; sleep 3; echo rest"], label: "held")
        try eventually("both markers printed") { cli.stderrText.components(separatedBy: "marker").count == 3 }
        XCTAssertEqual(cli.stdoutText, "", "the partial line is held back until its newline")
        try Processes.kill9(cli.pid)
        _ = try cli.wait()
        // The partial line was never written, so it was never acknowledged.
        let received = try check(["receive", "--name", "part1"])
        XCTAssertTrue(received.hasPrefix("partial-"), received)
        XCTAssertTrue(received.hasSuffix("rest\n"), received)
    }
}
