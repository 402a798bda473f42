import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// Issue 11, the host's side of "nothing lost, nothing stuck": buffering limits and
/// modes, background output between commands. Real sshd, real bash, real `tether`.
final class HostPromiseTests: CLITestCase {
    // MARK: Item 9: a buffer limit too small to work is refused

    func testTinyBufferLimitIsRefusedAndTheSmallestAllowedOneWorks() throws {
        let refused = try tether(["new", "alpha", "--name", "tiny", "--buffer-limit", "10"])
        XCTAssertNotEqual(refused.status, .exited(0), refused.stdoutText)
        XCTAssertTrue(refused.stderrText.contains("below the minimum of 1024 bytes"), refused.stderrText)
        XCTAssertTrue(try getJSON().isEmpty, "nothing was created")

        // The host refuses it too (a client of another build, the library).
        let viaInvoke = try tether(["invoke", "--computer", "alpha", "--session-name", "tiny2", "--in-disconnected-session",
                                    "--buffer-limit", "1", "--", "true"])
        XCTAssertNotEqual(viaInvoke.status, .exited(0), viaInvoke.stdoutText)
        XCTAssertTrue(viaInvoke.stderrText.contains("below the minimum"), viaInvoke.stderrText)

        // At the minimum, in block mode, commands run and nothing is lost.
        try check(["new", "alpha", "--name", "small", "--buffer-limit", "1024", "--output-buffering", "block"])
        for _ in 0..<3 { XCTAssertEqual(try check(["invoke", "--name", "small", "--", "true"]), "") }
        let lines = try check(["invoke", "--name", "small", "--", "seq 1 20000"])
        XCTAssertEqual(lines, (1...20000).map { "\($0)\n" }.joined())
    }

    // MARK: Item 4: drop mode drops only what nobody reads

    func testDropModeNeverDropsForAReaderAndReportsAnOverrunOnce() throws {
        try check(["new", "alpha", "--name", "lossy", "--buffer-limit", "1024", "--output-buffering", "drop"])
        let read = try tether(["invoke", "--name", "lossy", "--", "seq 1 20000"])
        XCTAssertEqual(read.status, .exited(0), read.stderrText)
        XCTAssertEqual(read.stdoutText, (1...20000).map { "\($0)\n" }.joined(), "a reader that reads loses nothing")
        XCTAssertFalse(read.stderrText.contains("dropped"), read.stderrText)

        // Nobody reading: the oldest output goes, and one notice tells the total.
        let marker = workDirectory + "/lossy.done"
        try check(["invoke", "--computer", "alpha", "--session-name", "unread", "--in-disconnected-session",
                   "--output-buffering", "drop", "--buffer-limit", "1024",
                   "--", "seq 1 20000; sleep 0.3; echo end; touch \"$1\"", marker])
        try eventually(timeout: 60, "the unread command finished") { access(marker, F_OK) == 0 }
        try eventually("the session is idle") {
            ((try? getJSON(["--computer", "alpha", "--name", "unread"]))?.first?["busy"] as? Bool) == false
        }
        let received = try tether(["receive", "--name", "unread"])
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        let notices = received.stderrText.split(separator: "\n").filter { $0.contains("were dropped") }
        XCTAssertEqual(notices.count, 1, received.stderrText)
        let total = (1...20000).reduce(0) { $0 + "\($1)\n".utf8.count } + "end\n".utf8.count
        let dropped = notices.first.flatMap { $0.split(separator: " ").lazy.compactMap { Int($0) }.first } ?? 0
        XCTAssertEqual(dropped + received.stdout.count, total, received.stderrText)
        // The newest output is kept (a record bigger than the limit may go whole while
        // nobody reads; the last line, written apart, is a record of its own).
        XCTAssertTrue(received.stdoutText.hasSuffix("end\n"), received.stdoutText)
    }

    // MARK: Item 3: background output between commands reaches a reader

    func testBackgroundOutputBetweenCommandsIsShownByTheNextInvoke() throws {
        try check(["new", "alpha", "--name", "bg"])
        let marker = workDirectory + "/bg.done"
        try check(["invoke", "--name", "bg", "--", "(sleep 1; echo BG; echo BGERR >&2; touch \"$1\") &", marker])
        try eventually("the background job printed") { access(marker, F_OK) == 0 }
        usleep(200_000)
        // The next command's invoke shows it first, each on the stream it was written to.
        // (Its stderr is compared whole: on a loaded machine the attach may take over 3 s,
        // and the stall notice — not what this test is about — would join it.)
        let next = try tether(["invoke", "--name", "bg", "--", "echo mine"], environment: ["TETHER_STALL_NOTICE": "600"])
        XCTAssertEqual(next.status, .exited(0), next.stderrText)
        XCTAssertEqual(next.stdoutText, "BG\nmine\n")
        XCTAssertEqual(next.stderrText, "BGERR\n")
        // Shown once: nothing is left for a receive, nothing repeats.
        let received = try tether(["receive", "--name", "bg"])
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        XCTAssertEqual(received.stdoutText, "")

        // With nobody invoking, receive shows it.
        try check(["invoke", "--name", "bg", "--", "(sleep 0.5; echo LATER) &"])
        try eventually("receive showed the background output") {
            (try? tether(["receive", "--name", "bg"]).stdoutText) == "LATER\n"
        }
        XCTAssertEqual(try check(["invoke", "--name", "bg", "--", "true"]), "")
    }
}
