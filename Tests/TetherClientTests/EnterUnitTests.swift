import XCTest
@testable import TetherCLI

/// The pure parts of `tether enter`: escapes, unfinished input, the session scripts'
/// encodings. (End to end: EnterTests.)
final class EnterUnitTests: XCTestCase {
    func testTildeDotDetachesOnlyAtTheStartOfALine() {
        var scanner = EscapeScanner()
        XCTAssertEqual(scanner.scan(Array("~.".utf8)).action, .detach, "first byte of the input is a line start")

        scanner = EscapeScanner()
        var result = scanner.scan(Array("echo a~.b\n".utf8))
        XCTAssertNil(result.action, "~. inside a line is text")
        XCTAssertEqual(String(decoding: result.forward, as: UTF8.self), "echo a~.b\n")
        result = scanner.scan(Array("~".utf8))
        XCTAssertEqual(result.forward, [], "a ~ at a line start waits for the next byte")
        result = scanner.scan(Array(".ignored".utf8))
        XCTAssertEqual(result.action, .detach, "~ then . in another chunk")

        scanner = EscapeScanner()
        result = scanner.scan(Array("x\r~.".utf8))
        XCTAssertEqual(result.action, .detach, "a raw-mode Enter (CR) starts a line too")
        XCTAssertEqual(result.forward, Array("x\r".utf8))
    }

    func testOtherEscapesAndPlainTildes() {
        var scanner = EscapeScanner()
        var result = scanner.scan(Array("~/bin/run\n".utf8))
        XCTAssertNil(result.action)
        XCTAssertEqual(String(decoding: result.forward, as: UTF8.self), "~/bin/run\n", "~ followed by other text is sent")
        result = scanner.scan(Array("~~.\n".utf8))
        XCTAssertNil(result.action, "~~ sends one ~ and ends the escape")
        XCTAssertEqual(String(decoding: result.forward, as: UTF8.self), "~.\n")
        result = scanner.scan(Array("~?".utf8))
        XCTAssertEqual(result.action, .help)
        XCTAssertEqual(result.forward, [])
    }

    func testUnfinishedInputIsWhatBashStopsAtTheEndOf() {
        XCTAssertTrue(ShellSyntax.isUnfinished("for i in 1 2"))
        XCTAssertTrue(ShellSyntax.isUnfinished("for i in 1 2\ndo echo $i"))
        XCTAssertFalse(ShellSyntax.isUnfinished("for i in 1 2\ndo echo $i\ndone"))
        XCTAssertTrue(ShellSyntax.isUnfinished("if true; then"))
        XCTAssertTrue(ShellSyntax.isUnfinished("echo 'open"))
        XCTAssertTrue(ShellSyntax.isUnfinished("echo \"open"))
        XCTAssertTrue(ShellSyntax.isUnfinished("echo $(date"))
        XCTAssertTrue(ShellSyntax.isUnfinished("f() {"))
        XCTAssertTrue(ShellSyntax.isUnfinished("cat <<EOF\nline"))
        XCTAssertFalse(ShellSyntax.isUnfinished("cat <<EOF\nline\nEOF"))
        XCTAssertTrue(ShellSyntax.isUnfinished("echo one \\"), "a trailing backslash continues the line")
        XCTAssertFalse(ShellSyntax.isUnfinished("echo one \\\\"), "an escaped backslash does not")
        XCTAssertFalse(ShellSyntax.isUnfinished("echo hello"))
        XCTAssertFalse(ShellSyntax.isUnfinished("fi"), "a plain syntax error is the session's to report")
        XCTAssertFalse(ShellSyntax.isUnfinished("echo )"))
    }

    func testHistoryEntriesSurviveTheFileFormat() {
        for entry in ["echo plain", "for i in 1 2\ndo echo $i\ndone", #"printf 'a\nb\\'"#, "it's \"quoted\""] {
            let escaped = EnterScripts.escapeHistoryEntry(entry)
            XCTAssertFalse(escaped.contains("\n"), "one entry, one line: \(escaped)")
            XCTAssertEqual(EnterScripts.historyEntries(Array((escaped + "\n").utf8)), [entry])
        }
    }

    func testCompletionKindFollowsThePositionOfTheWord() {
        XCTAssertEqual(EnterScripts.completionKind(line: "ec", word: "ec", wordStart: 0), .command)
        XCTAssertEqual(EnterScripts.completionKind(line: "ls | gr", word: "gr", wordStart: 5), .command)
        XCTAssertEqual(EnterScripts.completionKind(line: "cat fi", word: "fi", wordStart: 4), .file)
        XCTAssertEqual(EnterScripts.completionKind(line: "./scr", word: "./scr", wordStart: 0), .file)
        XCTAssertEqual(EnterScripts.completionKind(line: "echo $HO", word: "$HO", wordStart: 5), .variable)
        XCTAssertEqual(EnterScripts.candidates(from: Array("lib/\nlib\nlibexec\n".utf8), kind: .file), ["lib/", "libexec"])
        XCTAssertEqual(EnterScripts.candidates(from: Array("HOME\nHOSTNAME\n".utf8), kind: .variable), ["$HOME", "$HOSTNAME"])
    }

    func testPromptDirectoryAndLeaving() {
        XCTAssertEqual(EnterScripts.displayDirectory(Array("/home/u\0/home/u".utf8)), "~")
        XCTAssertEqual(EnterScripts.displayDirectory(Array("/home/u\0/home/u/src".utf8)), "~/src")
        XCTAssertEqual(EnterScripts.displayDirectory(Array("/home/u\0/home/user2".utf8)), "/home/user2")
        XCTAssertEqual(EnterScripts.displayDirectory(Array("/\0/srv/app".utf8)), "/srv/app")
        XCTAssertEqual(EnterLoop.leaveStatus("exit", lastStatus: 4), 4)
        XCTAssertEqual(EnterLoop.leaveStatus("  exit 3 ", lastStatus: 0), 3)
        XCTAssertEqual(EnterLoop.leaveStatus("logout", lastStatus: 0), 0)
        XCTAssertNil(EnterLoop.leaveStatus("exit 3; echo more", lastStatus: 0), "more than a leave: the session runs it")
        XCTAssertNil(EnterLoop.leaveStatus("exitcode=1", lastStatus: 0))
        XCTAssertNil(EnterLoop.leaveStatus("if x; then exit; fi", lastStatus: 0))
    }
}
