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
        let line = DriverLine.command(scriptName: "command-1.sh", arguments: ["a b"], stdinName: nil)
        XCTAssertEqual(line, #"\__tether_begin;{ \builtin echo s >&3;\builtin source "$__tether_w"/'command-1.sh' 'a b' 3>&-;} </dev/null;\builtin echo $? >&3"# + "\n")
        XCTAssertEqual(line.filter { $0 == "\n" }.count, 1, "one line")
        let withStdin = DriverLine.command(scriptName: "c.sh", arguments: [], stdinName: "stdin-1")
        XCTAssertTrue(withStdin.hasPrefix(#"\__tether_begin;\builtin set --;{ "#), withStdin)
        XCTAssertTrue(withStdin.contains(#"\builtin source "$__tether_w"/'c.sh' 3>&-;} <"$__tether_w"/'stdin-1';"#), withStdin)
        // bash reads its stdin pipe a byte per read(2): the line must stay short.
        XCTAssertLessThan(withStdin.utf8.count, 160, withStdin)
    }

    func testNULIsRefused() {
        XCTAssertNotNil(DriverLine.unusableReason("a\u{0}b"))
        XCTAssertNil(DriverLine.unusableReason("a b"))
    }
}
