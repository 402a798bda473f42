import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// `tether enter` end to end: the CLI in a real terminal (tmux) against the real sshd,
/// and in scripted mode with stdin from a file. Two client homes stand for two machines.
final class EnterTests: TwoClientTestCase {
    private var panes: [TmuxPane] = []

    override func tearDown() {
        if let run = testRun, !run.hasSucceeded {
            for pane in panes { print("---- tmux screen:\n\((try? pane.screen()) ?? "?")") }
        }
        panes.forEach { $0.kill() }
        panes.removeAll()
        super.tearDown()
    }

    /// `tether enter ARGS` in a terminal of its own, as client `home`.
    private func enter(_ arguments: [String], home: String, label: String) throws -> TmuxPane {
        var environment = ["TETHER_HOME": home, "TETHER_SSH_CONFIG": sshConfigPath]
        if let transport = Environment.get("TETHER_TEST_TRANSPORT") { environment["TETHER_TRANSPORT"] = transport }
        let pane = try TmuxPane(socket: workDirectory + "/\(label).tmux", command: [tetherPath, "enter"] + arguments,
                                environment: environment)
        panes.append(pane)
        return pane
    }

    /// Waits for `output` followed by a fresh prompt: only then does the prompt read the
    /// terminal (until then, what is typed is the command's input).
    @discardableResult
    private func waitForPrompt(_ pane: TmuxPane, after output: String, directory: String = "~") throws -> String {
        try pane.waitFor("\"\(output)\" and a prompt") { screen in
            guard let range = screen.range(of: output, options: .backwards) else { return false }
            let rest = screen[range.upperBound...]
            return rest.hasPrefix("\n[alpha:") && rest.hasSuffix("] \(directory)$") && rest.dropFirst().split(separator: "\n").count == 1
        }
    }

    /// Lines of `screen` that are exactly `text`.
    private func count(_ text: String, in screen: String) -> Int {
        screen.split(separator: "\n").filter { $0 == text }.count
    }

    // MARK: scripted

    func testScriptedInputRunsEachCommandInTheSessionWithoutPrompt() throws {
        try check(["new", "alpha", "--name", "s"])
        let script = """
        x=41
        echo "x+1=$((x+1))"
        for i in 1 2
        do
          echo "i=$i"
        done
        echo "open
        quote"
        echo one \\
        two
        cd /tmp
        pwd
        exit 3
        echo never
        """
        let result = try tether(["enter", "--name", "s"], stdin: Array(script.utf8))
        XCTAssertEqual(result.status, .exited(3), result.stderrText)
        XCTAssertEqual(result.stdoutText, "x+1=42\ni=1\ni=2\nopen\nquote\none two\n/tmp\n")
        XCTAssertEqual(result.stderrText, "")
        // The session is still there, with what the script left in it.
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "echo $x; pwd"]), "41\n/tmp\n")

        let failing = try tether(["enter", "--name", "s"], stdin: Array("fi\necho after-error\nfalse\n".utf8))
        XCTAssertEqual(failing.status, .exited(1), "the last command's status")
        XCTAssertEqual(failing.stdoutText, "after-error\n", "a syntax error ends that command only")
        XCTAssertTrue(failing.stderrText.contains("syntax error"), failing.stderrText)
    }

    func testScriptedTemporarySessionIsRemovedAfterwards() throws {
        let result = try tether(["enter", "alpha"], stdin: Array("echo in-temporary\n".utf8))
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        XCTAssertEqual(result.stdoutText, "in-temporary\n")
        XCTAssertEqual(try getJSON(["--computer", "alpha"]).count, 0, "the temporary session is gone")
    }

    // MARK: at the prompt

    func testPromptNamesComputerSessionAndDirectoryAndKeepsState() throws {
        try check(["new", "alpha", "--name", "s"])
        let pane = try enter(["--name", "s"], home: firstHome, label: "prompt")
        try pane.waitFor(text: "[alpha:s] ~$")
        try pane.typeLine("cd /tmp && x=41")
        try pane.waitFor(text: "[alpha:s] /tmp$")
        try pane.typeLine("echo \"answer $((x+1))\"")
        try waitForPrompt(pane, after: "\nanswer 42", directory: "/tmp")

        // A loop typed over three lines: bash decides when it is whole.
        try pane.typeLine("for i in 1 2 3")
        try pane.waitFor("the continuation prompt") { $0.hasSuffix("for i in 1 2 3\n>") }
        try pane.typeLine("do echo \"n=$i\"")
        try pane.waitFor("a second continuation prompt") { $0.hasSuffix("> do echo \"n=$i\"\n>") }
        try pane.typeLine("done")
        let screen = try pane.waitFor(text: "n=3")
        XCTAssertEqual(count("n=1", in: screen), 1)
        XCTAssertEqual(count("n=2", in: screen), 1)

        try pane.waitFor("the prompt after the loop") { $0.hasSuffix("n=3\n[alpha:s] /tmp$") }
        try pane.typeLine("exit")
        XCTAssertEqual(try pane.waitForExit(), 0)
        // Leaving kept the session (Exit-PSSession), with its state.
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "echo $x"]), "41\n")
    }

    func testCtrlCInterruptsTheCommandAndReturnsToThePrompt() throws {
        try check(["new", "alpha", "--name", "s"])
        let pane = try enter(["--name", "s"], home: firstHome, label: "interrupt")
        try pane.waitFor(text: "[alpha:s] ~$")
        try pane.typeLine("echo started; sleep 30; echo not-interrupted")
        try pane.waitFor("the command's first line") { self.count("started", in: $0) == 1 }
        try pane.press("C-c")
        try pane.waitFor("the prompt after Ctrl-C", timeout: 10) { $0.hasSuffix("[alpha:s] ~$") }
        try pane.typeLine("echo back-at-prompt")
        let screen = try waitForPrompt(pane, after: "\nback-at-prompt")
        XCTAssertFalse(screen.contains("\nnot-interrupted"), screen)
        // Ctrl-C at the prompt drops the line and gives a new prompt.
        try pane.type("echo dropped")
        try pane.press("C-c")
        try waitForPrompt(pane, after: "^C")
        try pane.typeLine("echo kept")
        let after = try waitForPrompt(pane, after: "\nkept")
        XCTAssertFalse(after.contains("\ndropped"), after)
        try pane.press("C-d")
        XCTAssertEqual(try pane.waitForExit(), 0)
    }

    func testEachLineRunsOnATerminalAndAReplWorks() throws {
        try check(["new", "alpha", "--name", "s"])
        let pane = try enter(["--name", "s"], home: firstHome, label: "terminal")
        try pane.waitFor(text: "[alpha:s] ~$")
        try pane.typeLine("[ -t 0 ] && [ -t 1 ] && echo \"on a terminal: $(tput cols)\"")
        try waitForPrompt(pane, after: "\non a terminal: 120")
        // A resize while a command runs reaches it.
        try pane.typeLine("echo reading; read -r line; tput cols")
        try pane.waitFor("the command reading") { $0.hasSuffix("\nreading") }
        try pane.resize(width: 100, height: 40)
        try pane.press("Enter")
        try waitForPrompt(pane, after: "\n100")

        // Python's REPL, used as at any terminal: prompts, a value, a multi-line block.
        try pane.typeLine("python3 -q")
        try pane.waitFor("python's prompt") { $0.hasSuffix(">>>") }
        try pane.typeLine("print(6 * 7)")
        try pane.waitFor("the answer and the next prompt") { $0.hasSuffix("print(6 * 7)\n42\n>>>") }
        try pane.typeLine("for n in range(2):")
        try pane.waitFor("python's continuation prompt") { $0.hasSuffix("...") }
        try pane.typeLine("    print('row', n)")
        try pane.press("Enter")
        try pane.waitFor("the loop's rows") { $0.hasSuffix("row 0\nrow 1\n>>>") }
        try pane.press("C-d")
        try pane.waitFor("the session's prompt after python") { $0.hasSuffix("[alpha:s] ~$") }
        try pane.typeLine("exit")
        XCTAssertEqual(try pane.waitForExit(), 0)
    }

    func testTabCompletesFromTheSession() throws {
        try check(["new", "alpha", "--name", "s"])
        let directory = workDirectory + "/completion-dir"
        let pane = try enter(["--name", "s"], home: firstHome, label: "complete")
        try pane.waitFor(text: "[alpha:s] ~$")
        // Defined in the session, not on the client: only the session can complete them.
        try pane.typeLine("tether_fn_defined_here() { echo fn-ran; }; export TETHER_VAR_DEFINED=var-value; mkdir -p \(directory) && touch \(directory)/only-file")
        try pane.waitFor("the prompt") { $0.hasSuffix("[alpha:s] ~$") }
        try pane.type("tether_fn_def")
        try pane.press("Tab")
        try pane.waitFor("the function completed") { $0.hasSuffix("$ tether_fn_defined_here") }
        try pane.press("Enter")
        try waitForPrompt(pane, after: "\nfn-ran")
        try pane.type("echo $TETHER_VAR_DEF")
        try pane.press("Tab")
        try pane.waitFor("the variable completed") { $0.hasSuffix("$ echo $TETHER_VAR_DEFINED") }
        try pane.press("Enter")
        try waitForPrompt(pane, after: "\nvar-value")
        try pane.type("cat \(directory)/on")
        try pane.press("Tab")
        try pane.waitFor("the file completed") { $0.hasSuffix("$ cat \(directory)/only-file") }
        try pane.press("C-u")
        try pane.typeLine("exit")
        XCTAssertEqual(try pane.waitForExit(), 0)
    }

    func testTemporarySessionIsRemovedOnLeaving() throws {
        let pane = try enter(["alpha"], home: firstHome, label: "temporary")
        try pane.waitFor("the prompt") { $0.contains("[alpha:") && $0.hasSuffix("~$") }
        try pane.typeLine("echo $((6*7))")
        try waitForPrompt(pane, after: "\n42")
        XCTAssertEqual(try getJSON(["--computer", "alpha"]).count, 1, "the temporary session exists while entered")
        try pane.typeLine("exit")
        XCTAssertEqual(try pane.waitForExit(), 0)
        XCTAssertEqual(try getJSON(["--computer", "alpha"]).count, 0, "and is gone after leaving")
    }

    // MARK: two machines

    func testDetachLeavesTheLoopRunningAndEnterElsewhereShowsWhatItPrinted() throws {
        try check(["new", "alpha", "--name", "s"])
        let first = try enter(["--name", "s"], home: firstHome, label: "first")
        try first.waitFor(text: "[alpha:s] ~$")
        try first.typeLine("for i in $(seq 1 40); do echo tick-$i; sleep 0.1; done; echo loop-done")
        try first.waitFor(text: "tick-3")
        // ~. at the start of a line, as in ssh (the Enter before makes it one).
        try first.press("Enter")
        try first.type("~.")
        try first.press("Enter")
        XCTAssertEqual(try first.waitForExit(), 0)
        let firstScreen = try first.screen()
        XCTAssertTrue(firstScreen.contains("detached from alpha:s"), firstScreen)
        XCTAssertFalse(firstScreen.contains("\nloop-done"), "detached while the loop ran")
        let session = try remoteSession("s", home: firstHome)
        XCTAssertEqual(session["state"] as? String, "Disconnected", "released, as by disconnect: \(session)")

        let second = try enter(["--computer", "alpha", "--name", "s"], home: secondHome, label: "second")
        let secondScreen = try second.waitFor("the loop's end and the prompt") {
            $0.contains("\nloop-done\n[alpha:s] ~$")
        }
        // Every tick reached one of the two screens: what the first did not show, the
        // second replayed, then the rest came live.
        let shown = Set(lineNumbers(firstScreen.replacingOccurrences(of: "tick-", with: "line "))
                        + lineNumbers(secondScreen.replacingOccurrences(of: "tick-", with: "line ")))
        XCTAssertEqual(shown, Set(1...40), "ticks lost between the two clients")
        XCTAssertFalse(secondScreen.contains("tick-1\n"), "what the first client showed is not shown again")
        try second.typeLine("exit")
        XCTAssertEqual(try second.waitForExit(), 0)
    }

    func testHistoryFollowsTheSessionToAnotherClient() throws {
        try check(["new", "alpha", "--name", "s"])
        let first = try enter(["--name", "s"], home: firstHome, label: "first")
        try first.waitFor(text: "[alpha:s] ~$")
        try first.typeLine("echo history-from-first")
        try waitForPrompt(first, after: "\nhistory-from-first")
        try first.typeLine("~.")
        XCTAssertEqual(try first.waitForExit(), 0)

        let second = try enter(["--computer", "alpha", "--name", "s"], home: secondHome, label: "second")
        try second.waitFor(text: "[alpha:s] ~$")
        try second.press("Up")
        try second.waitFor("the first client's line recalled") { $0.hasSuffix("$ echo history-from-first") }
        try second.press("Enter")
        try waitForPrompt(second, after: "\nhistory-from-first")
        try second.press("C-d")
        XCTAssertEqual(try second.waitForExit(), 0)
    }
}
