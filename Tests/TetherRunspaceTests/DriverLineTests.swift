import XCTest
@testable import TetherRunspace

final class DriverLineTests: XCTestCase {
    func testQuotingKeepsEveryByte() {
        XCTAssertEqual(DriverLine.quote("plain"), "'plain'")
        XCTAssertEqual(DriverLine.quote("it's"), #"'it'\''s'"#)
        XCTAssertEqual(DriverLine.quote(""), "''")
        XCTAssertEqual(DriverLine.quote("$HOME `x` \\ \"q\"\nnext"), "'$HOME `x` \\ \"q\"\nnext'")
    }

    func testCommandLineShape() {
        let line = DriverLine.command(driverName: "run.sh")
        XCTAssertEqual(line, #"\builtin source "$__tether_w"/'run.sh';\__tether_end"# + "\n")
        // bash reads its stdin pipe a byte per read(2): the line must stay short.
        XCTAssertLessThan(line.utf8.count, 64, line)
    }

    func testPlainCommandIsOneShortLineAndItsDriverTheDriverFilesText() {
        XCTAssertEqual(DriverLine.plainCommand, #"\builtin eval "$__tether_run""# + "\n")
        XCTAssertLessThan(DriverLine.plainCommand.utf8.count, 32)
        XCTAssertEqual(DriverLine.plainDriver,
                       DriverLine.driverFile(scriptName: "command.sh", arguments: [], stdinName: nil) + #"\__tether_end"#)
        XCTAssertTrue(DriverLine.isPlain(arguments: [], stdinName: nil, terminal: nil))
        XCTAssertFalse(DriverLine.isPlain(arguments: ["a"], stdinName: nil, terminal: nil))
        XCTAssertFalse(DriverLine.isPlain(arguments: [], stdinName: "stdin-1", terminal: nil))
        XCTAssertFalse(DriverLine.isPlain(arguments: [], stdinName: nil, terminal: ("/dev/pts/9", "xterm")))
        // Defined once, readonly, before the first command.
        let startup = DriverLine.startup(workDirectory: "/w", driverInput: "/proc/1/fd/4", statusOutput: "/proc/1/fd/5")
        XCTAssertTrue(startup.contains(#"\builtin readonly __tether_run="# + DriverLine.quote(DriverLine.plainDriver) + "\n"), startup)
    }

    func testDriverFileShape() {
        let withArguments = DriverLine.driverFile(scriptName: "command.sh", arguments: ["a b"], stdinName: nil)
        XCTAssertEqual(withArguments, "\\__tether_begin\n" +
            #"{ \builtin echo s >&3; \builtin source "$__tether_w"/'command.sh' 'a b' 3>&-; } </dev/null"# + "\n")
        let withStdin = DriverLine.driverFile(scriptName: "c.sh", arguments: [], stdinName: "stdin-1")
        XCTAssertTrue(withStdin.hasPrefix("\\__tether_begin\n\\builtin set --\n"), withStdin)
        XCTAssertTrue(withStdin.hasSuffix(#"3>&-; } <"$__tether_w"/'stdin-1'"# + "\n"), withStdin)
    }

    func testNULIsRefused() {
        XCTAssertNotNil(DriverLine.unusableReason("a\u{0}b"))
        XCTAssertNil(DriverLine.unusableReason("a b"))
    }
}
