import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// `tether invoke --tty` end to end: the CLI in a real terminal (tmux) against the real
/// sshd. The local terminal's settings (`stty -g`) are compared before and after.
final class TerminalInvokeTests: CLITestCase {
    private var pane: TmuxPane?

    override func tearDown() {
        if let run = testRun, !run.hasSucceeded, let pane {
            print("---- tmux screen:\n\((try? pane.screen()) ?? "?")")
        }
        pane?.kill()
        pane = nil
        super.tearDown()
    }

    /// Runs `tether invoke --name work --tty -- SCRIPT` in a tmux pane, between two
    /// `stty -g` snapshots; the pane's command exits with tether's status.
    private func invokeOnTerminal(_ script: String, width: Int = 90, height: Int = 30) throws -> TmuxPane {
        try check(["new", "alpha", "--name", "work"])
        var environment = ["TETHER_HOME": tetherHome, "TETHER_SSH_CONFIG": sshConfigPath]
        if let transport = Environment.get("TETHER_TEST_TRANSPORT") { environment["TETHER_TRANSPORT"] = transport }
        let quoted = "'" + script.replacingOccurrences(of: "'", with: "'\\''") + "'"
        let shell = "stty -g > \(workDirectory)/stty.before; \(tetherPath) invoke --name work --tty -- \(quoted); " +
            "s=$?; stty -g > \(workDirectory)/stty.after; exit $s"
        let pane = try TmuxPane(socket: workDirectory + "/tty.tmux", command: ["/bin/sh", "-c", shell],
                                environment: environment, width: width, height: height)
        self.pane = pane
        return pane
    }

    private func assertTerminalRestored(file: StaticString = #filePath, line: UInt = #line) {
        let before = Descriptors.readFile(workDirectory + "/stty.before").map { String(decoding: $0, as: UTF8.self) }
        let after = Descriptors.readFile(workDirectory + "/stty.after").map { String(decoding: $0, as: UTF8.self) }
        XCTAssertNotNil(before, file: file, line: line)
        XCTAssertEqual(before, after, "the local terminal's settings are back", file: file, line: line)
    }

    func testCommandSeesATerminalAndStatePersists() throws {
        let pane = try invokeOnTerminal("[ -t 0 ] && [ -t 1 ] && echo both-tty; tty; echo \"term=$TERM\"; tput cols; cd /tmp; kept=yes")
        let status = try pane.waitForExit()
        let screen = try pane.screen()
        XCTAssertEqual(status, 0, screen)
        XCTAssertTrue(screen.contains("both-tty"), screen)
        XCTAssertTrue(screen.contains("/dev/pts/"), screen)
        XCTAssertTrue(screen.contains("term=tmux") || screen.contains("term=screen"), "the client's TERM: \(screen)")
        XCTAssertTrue(screen.split(separator: "\n").contains("90"), "the client's width: \(screen)")
        assertTerminalRestored()
        XCTAssertEqual(try check(["invoke", "--name", "work", "--", "echo $kept $PWD"]), "yes /tmp\n")
    }

    func testResizeReachesTheProgram() throws {
        let pane = try invokeOnTerminal("trap 'echo \"cols=$(tput cols)\"; resized=1' WINCH; echo ready; until [ -n \"${resized-}\" ]; do sleep 0.1; done")
        try pane.waitFor(text: "ready")
        try pane.resize(width: 70, height: 20)
        try pane.waitFor(text: "cols=70")
        XCTAssertEqual(try pane.waitForExit(), 0)
        assertTerminalRestored()
    }

    func testCtrlCInterruptsTheCommandAndKeepsTheSession() throws {
        let pane = try invokeOnTerminal("echo sleeping; sleep 30; echo no")
        try pane.waitFor(text: "sleeping")
        try pane.press("C-c")
        XCTAssertEqual(try pane.waitForExit(timeout: 10), 130)
        XCTAssertFalse(try pane.screen().contains("no"))
        assertTerminalRestored()
        XCTAssertEqual(try check(["invoke", "--name", "work", "--", "echo alive"]), "alive\n")
    }

    func testFullScreenProgramOpensAndQuitsCleanly() throws {
        let pane = try invokeOnTerminal("seq 1 500 | less")
        try pane.waitFor("less showing the start") { $0.contains("\n29") && !$0.contains("\n31") }
        try pane.type("q")
        XCTAssertEqual(try pane.waitForExit(), 0)
        assertTerminalRestored()
    }

    func testRemoteKillOfBashRestoresTheTerminal() throws {
        let pane = try invokeOnTerminal("echo victim; kill -9 $$")
        XCTAssertNotEqual(try pane.waitForExit(), 0)
        assertTerminalRestored()
    }
}
