import XCTest
import Foundation
import Glibc
import TetherTestSupport

/// `tether enter` follows `invoke`'s resume rules: a link cut while a line runs is
/// reconnected, the output continues where it stopped, and the next lines run on the new
/// connection.
final class EnterResumeTests: ResumeTestCase {
    func testScriptedEnterResumesAfterACutLinkAndGoesOn() throws {
        try check(["new", "alpha", "--name", "s"])
        let scriptPath = workDirectory + "/steps.sh"
        try writeFile(scriptPath, Self.loop + "\necho \"after the cut: $i\"\n")
        let script = open(scriptPath, O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(script, 0)
        defer { close(script) }
        let run = try spawnTether(["enter", "--name", "s"], home: firstHome, label: "enter", stdinFD: script)
        try waitForLine(run, 10)
        try cutLink(for: 1)
        XCTAssertEqual(try run.wait(timeout: 60), .exited(0), run.stderrText)
        XCTAssertEqual(run.stdoutText, Self.allLines + "after the cut: 40\n", "every line once, then the next command")
        let stderr = run.stderrText
        XCTAssertTrue(stderr.contains("tether: alpha: connection lost ("), stderr)
        XCTAssertTrue(stderr.contains("tether: alpha: reconnected\n"), stderr)
        XCTAssertGreaterThanOrEqual(proxy.statistics.cut, 1, "the link was really cut")
    }
}
