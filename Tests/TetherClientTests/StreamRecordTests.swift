import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// PowerShell's other streams end to end, through the real sshd: `tether-warning`,
/// `tether-verbose`, `tether-information` and `tether-progress` in a session (and in the
/// programs its commands start), carried as their own records, shown on stderr (verbose
/// only with --verbose, progress only on a terminal) and listed by `--json` in order.
final class StreamRecordTests: CLITestCase {
    /// stdout, then every stream, then stdout and stderr again: one writer, one order.
    static let everyStream = """
        echo out1; tether-warning careful now; echo out2; tether-verbose some details; tether-information for you
        tether-progress 50 Copy 'file 1 of 2'; tether-progress --completed Copy; echo err >&2
        """

    /// `invoke --json`, parsed: the one session's object.
    private func invokeJSON(_ script: String, _ extra: [String] = ["--computer", "alpha"]) throws -> [String: Any] {
        let text = try check(["invoke"] + extra + ["--json", "--", script])
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap((parsed as? [[String: Any]])?.first, text)
    }

    private func records(_ object: [String: Any]) throws -> [[String: Any]] {
        try XCTUnwrap(object["records"] as? [[String: Any]], "\(object)")
    }

    func testJSONCarriesEveryRecordWithItsStreamInOrder() throws {
        let object = try invokeJSON(Self.everyStream)
        let records = try records(object)
        XCTAssertEqual(records.map { $0["stream"] as? String },
                       ["stdout", "warning", "stdout", "verbose", "information", "progress", "progress", "stderr"],
                       "\(records)")
        guard records.count == 8 else { return }
        XCTAssertEqual(records[1]["text"] as? String, "careful now")
        XCTAssertEqual(records[3]["text"] as? String, "some details")
        XCTAssertEqual(records[4]["text"] as? String, "for you")
        XCTAssertEqual(records[5]["activity"] as? String, "Copy")
        XCTAssertEqual(records[5]["status"] as? String, "file 1 of 2")
        XCTAssertEqual(records[5]["percent"] as? Int, 50)
        XCTAssertEqual(records[5]["completed"] as? Bool, false)
        XCTAssertEqual(records[6]["completed"] as? Bool, true)
        XCTAssertTrue(records[6]["percent"] is NSNull, "\(records[6])")
        XCTAssertEqual(object["stdout"] as? String, "out1\nout2\n")
        XCTAssertEqual(object["stderr"] as? String, "err\n")
    }

    func testShownOnStderrWithoutATerminalVerboseOnlyWhenAskedAndNoProgress() throws {
        let plain = try tether(["invoke", "--computer", "alpha", "--", Self.everyStream])
        XCTAssertEqual(plain.status, .exited(0), plain.stderrText)
        XCTAssertEqual(plain.stdoutText, "out1\nout2\n", "nothing of the other streams on stdout")
        // Not a terminal: no colour, no bar, no cursor movement — just the lines.
        XCTAssertEqual(plain.stderrText, "WARNING: careful now\nfor you\nerr\n")

        let verbose = try tether(["invoke", "--computer", "alpha", "--verbose", "--", Self.everyStream])
        XCTAssertEqual(verbose.status, .exited(0), verbose.stderrText)
        XCTAssertEqual(verbose.stdoutText, "out1\nout2\n")
        XCTAssertEqual(verbose.stderrText, "WARNING: careful now\nVERBOSE: some details\nfor you\nerr\n")

        // PowerShell's spelling reaches the same flag.
        let cmdlet = try tether(["Invoke-Command", "-ComputerName", "alpha", "-Verbose", "-ScriptBlock", "{ tether-verbose said }"])
        XCTAssertEqual(cmdlet.status, .exited(0), cmdlet.stderrText)
        XCTAssertEqual(cmdlet.stderrText, "VERBOSE: said\n")
    }

    func testScriptsSubshellsAndOtherProgramsTheCommandStartsReachTheStreams() throws {
        try check(["new", "alpha", "--name", "s"])
        let script = #"""
            dir=$(mktemp -d); printf '#!/bin/bash\ntether-warning "from a script: $1"\n' > "$dir/child.sh"
            bash "$dir/child.sh" one
            sh -c 'tether-information "from sh"'
            ( tether-verbose "from a subshell" )
            { tether-progress 70 Background; } & wait
            env -i PATH="$PATH" TETHER_STREAMS="$TETHER_STREAMS" tether-warning "from a clean environment"
            tether-warning "from the session"; rm -r "$dir"
            """#
        let object = try invokeJSON(script, ["--name", "s"])
        let records = try records(object)
        XCTAssertEqual(records.map { "\($0["stream"] ?? "?"):\($0["text"] ?? $0["activity"] ?? "?")" },
                       ["warning:from a script: one", "information:from sh", "verbose:from a subshell", "progress:Background",
                        "warning:from a clean environment", "warning:from the session"], "\(object)")
        XCTAssertEqual(object["exitStatus"] as? Int, 0)

        // Outside a session (no FIFO named) the commands still work: a warning is a line on stderr.
        let outside = try tether(["invoke", "--name", "s", "--", "env -u TETHER_STREAMS tether-warning alone; env -u TETHER_STREAMS tether-verbose quiet"])
        XCTAssertEqual(outside.status, .exited(0), outside.stderrText)
        XCTAssertEqual(outside.stderrText, "WARNING: alone\n")

        // A wrong call says how to make a right one.
        let wrong = try tether(["invoke", "--name", "s", "--", "tether-progress half Copy"])
        XCTAssertEqual(wrong.status, .exited(2))
        XCTAssertTrue(wrong.stderrText.contains("usage: tether-progress [--completed] PERCENT ACTIVITY [STATUS]"), wrong.stderrText)
        // Functions in the session's shell, programs on PATH for everything else.
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "type -t tether-progress; type -P tether-warning | grep -c /bin/tether-warning"]),
                       "function\n1\n")
    }

    func testJobsKeepTheirStreamsInTheirOwnOutput() throws {
        try check(["new", "alpha", "--name", "s"])
        try check(["invoke", "--name", "s", "--as-job", "--job-name", "j", "--",
                   "echo out; tether-warning in the job; bash -c 'tether-information from its child'; tether-progress 20 Job"])
        let received = try tether(["job", "receive", "--name", "s", "--job-name", "j", "--wait"])
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        XCTAssertEqual(received.stdoutText, "out\n")
        XCTAssertEqual(received.stderrText, "WARNING: in the job\nfrom its child\n")
        // Nothing of the job's reached the session's own output.
        let session = try tether(["receive", "--name", "s"])
        XCTAssertEqual(session.stderrText, "", "the session's journal has no job records")
    }

    func testRecordsOfACommandNobodyFollowedAreReceivedLater() throws {
        try check(["invoke", "--computer", "alpha", "--in-disconnected-session", "--session-name", "later", "--",
                   "tether-warning early; tether-progress 40 Stage; echo out; tether-verbose late; tether-information done"])
        let received = try tether(["receive", "--name", "later", "--verbose"])
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        XCTAssertEqual(received.stdoutText, "out\n")
        XCTAssertEqual(received.stderrText, "WARNING: early\nVERBOSE: late\ndone\n")
        XCTAssertEqual(try tether(["receive", "--name", "later"]).stderrText, "", "received once")
    }

    func testEnterShowsThemToo() throws {
        try check(["new", "alpha", "--name", "s"])
        let lines = "echo one\ntether-warning mind the gap\ntether-verbose hidden\ntether-information said\necho two\n"
        let plain = try tether(["enter", "--name", "s"], stdin: Array(lines.utf8))
        XCTAssertEqual(plain.status, .exited(0), plain.stderrText)
        XCTAssertEqual(plain.stdoutText, "one\ntwo\n")
        XCTAssertEqual(plain.stderrText, "WARNING: mind the gap\nsaid\n")
        let verbose = try tether(["enter", "--name", "s", "--verbose"], stdin: Array(lines.utf8))
        XCTAssertEqual(verbose.stderrText, "WARNING: mind the gap\nVERBOSE: hidden\nsaid\n")
    }

    /// A client of the previous release (protocol 2) has no record kinds 16–19: the runspace
    /// sends it their stderr equivalent, same seq, so it neither fails nor loses a warning.
    func testAClientOfThePreviousReleaseGetsWarningsAsStderrLines() throws {
        let result = try previousTether(["invoke", "--computer", "alpha", "--", Self.everyStream])
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        XCTAssertEqual(result.stdoutText, "out1\nout2\n")
        XCTAssertEqual(result.stderrText, "WARNING: careful now\nfor you\nerr\n")
    }
}
