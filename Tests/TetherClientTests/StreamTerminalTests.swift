import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// What a person at a terminal sees of the other streams and of a fan-out: the CLI in a
/// real terminal (tmux) against two real sshd "computers". The commands wait for gate
/// files the test creates, so each screen is looked at while the bars must be there.
final class StreamTerminalTests: CLITestCase {
    override var computerCount: Int { 2 }
    private var pane: TmuxPane?
    private var panes = 0

    override func tearDown() {
        if let run = testRun, !run.hasSucceeded, let pane {
            print("---- tmux screen:\n\((try? pane.screen()) ?? "?")")
        }
        pane?.kill()
        pane = nil
        super.tearDown()
    }

    /// `tether ARGUMENTS` in a tmux pane (stdout and stderr the terminal, unless `shellSuffix`
    /// redirects); the pane's command exits with tether's status. NO_COLOR (which `swift
    /// test` may have set) only where `environment` sets it.
    private func onTerminal(_ arguments: [String], shellSuffix: String = "", environment extra: [String: String] = [:]) throws -> TmuxPane {
        var environment = ["TETHER_HOME": tetherHome, "TETHER_SSH_CONFIG": sshConfigPath]
        if let transport = Environment.get("TETHER_TEST_TRANSPORT") { environment["TETHER_TRANSPORT"] = transport }
        environment.merge(extra) { $1 }
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        panes += 1
        let pane = try TmuxPane(socket: workDirectory + "/streams\(panes).tmux",
                                command: ["/bin/sh", "-c", "\(extra["NO_COLOR"] == nil ? "unset NO_COLOR; " : "")\(tetherPath) \(quoted) \(shellSuffix)"],
                                environment: environment, width: 100, height: 30)
        self.pane = pane
        return pane
    }

    private func gate(_ name: String) -> String { workDirectory + "/" + name }
    private func open(_ name: String) throws { try writeFile(gate(name), "") }
    private func waitOn(_ name: String) -> String { "until [ -e '\(gate(name))' ]; do sleep 0.05; done" }

    func testProgressBarIsDrawnBelowTheOutputAndClearedWhenDone() throws {
        try check(["new", "alpha", "--name", "work"])
        let script = "echo before; tether-progress 40 Copying 'file 2 of 5'; \(waitOn("one")); echo middle; " +
            "tether-progress 80 Copying 'file 4 of 5'; tether-warning almost there; \(waitOn("two")); echo after"
        let pane = try onTerminal(["invoke", "--name", "work", "--", script])
        var screen = try pane.waitFor(text: "40% file 2 of 5")
        XCTAssertTrue(screen.contains("Copying [============>"), screen)
        XCTAssertTrue(try pane.lastLine().hasPrefix("Copying ["), "the bar is below the output: \(screen)")
        try open("one")
        screen = try pane.waitFor("the second bar and the warning") { $0.contains("80% file 4 of 5") && $0.contains("almost there") }
        XCTAssertTrue(screen.contains("before\nmiddle\nWARNING: almost there\n"), "output and warnings go above the bar, none of it mixed in: \(screen)")
        XCTAssertTrue(try pane.lastLine().hasPrefix("Copying ["), screen)
        XCTAssertEqual(screen.components(separatedBy: "Copying [").count, 2, "one bar for the activity: \(screen)")
        try open("two")
        XCTAssertEqual(try pane.waitForExit(), 0)
        screen = try pane.screen()
        XCTAssertFalse(screen.contains("Copying"), screen)
        XCTAssertTrue(screen.contains("before\nmiddle\nWARNING: almost there\nafter"), "the bar is gone when the command ends: \(screen.debugDescription)")
    }

    func testStdoutToAFileGetsNoneOfTheDrawing() throws {
        try check(["new", "alpha", "--name", "work"])
        let out = workDirectory + "/out.txt"
        let pane = try onTerminal(["invoke", "--name", "work", "--", "echo one; tether-progress 50 Half; \(waitOn("go")); tether-progress --completed Half; echo two"],
                                  shellSuffix: "> '\(out)'")
        try pane.waitFor(text: "Half [")
        try open("go")
        XCTAssertEqual(try pane.waitForExit(), 0)
        XCTAssertEqual(String(decoding: Descriptors.readFile(out) ?? [], as: UTF8.self), "one\ntwo\n", "stdout is the command's alone")
        XCTAssertFalse(try pane.screen().contains("Half"), "completed: the bar went away")
    }

    func testColourOnATerminalUnlessNoColor() throws {
        try check(["new", "alpha", "--name", "work"])
        var pane = try onTerminal(["invoke", "--name", "work", "--", "tether-warning hot; \(waitOn("a"))"])
        try pane.waitFor(text: "WARNING: hot")
        let coloured = try pane.screenWithEscapes()
        XCTAssertTrue(coloured.contains("\u{1B}[33mWARNING: hot"), coloured.debugDescription)
        try open("a")
        XCTAssertEqual(try pane.waitForExit(), 0)
        pane.kill()

        pane = try onTerminal(["invoke", "--name", "work", "--", "tether-warning cold; tether-progress 10 Plain; \(waitOn("b"))"],
                              environment: ["NO_COLOR": "1"])
        try pane.waitFor(text: "Plain [")
        let escaped = try pane.screenWithEscapes()
        XCTAssertTrue(escaped.contains("WARNING: cold"), escaped)
        XCTAssertFalse(escaped.contains("\u{1B}["), "NO_COLOR: no colour at all: \(escaped)")
        try open("b")
        XCTAssertEqual(try pane.waitForExit(), 0)
    }

    func testFanOutShowsComputersDoneAndFailedAndABarPerComputer() throws {
        try check(["new", "alpha", "--name", "s"])
        try check(["new", "beta", "--name", "s"])
        try check(["invoke", "--computer", "alpha", "--name", "s", "--", "role=fast"])
        try check(["invoke", "--computer", "beta", "--name", "s", "--", "role=slow"])
        let script = "if [ \"$role\" = slow ]; then tether-progress 30 Build; \(waitOn("slow")); else false; fi"
        let pane = try onTerminal(["invoke", "--name", "s", "--", script])
        let screen = try pane.waitFor("one computer done") { $0.contains("tether: 1/2 computers done, 1 failed") && $0.contains("[beta] Build [") }
        XCTAssertTrue(screen.contains(" 30%"), screen)
        XCTAssertFalse(screen.contains("[alpha] Build"), screen)
        XCTAssertTrue(try pane.lastLine().hasPrefix("tether: 1/2 computers done"), screen)
        try open("slow")
        XCTAssertEqual(try pane.waitForExit(), 1, "alpha's status")
        let final = try pane.screen()
        XCTAssertFalse(final.contains("computers done"), "cleared at the end: \(final)")
        XCTAssertFalse(final.contains("Build ["), final)
    }
}
