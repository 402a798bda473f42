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
        let line = DriverLine.command(scriptPath: "/w/command-1.sh", arguments: ["a b"], stdinPath: nil)
        XCTAssertTrue(line.hasSuffix(#"{ \builtin printf 's\n' >&3; \builtin source '/w/command-1.sh' 'a b' 3>&-; } < /dev/null; \builtin printf '%d\n' $? >&3"# + "\n"), line)
        XCTAssertEqual(line.filter { $0 == "\n" }.count, 1, "one line")
        let withStdin = DriverLine.command(scriptPath: "/w/c.sh", arguments: [], stdinPath: "/w/stdin-1")
        XCTAssertTrue(withStdin.contains(#"{ \builtin printf 's\n' >&3; \builtin source '/w/c.sh' 3>&-; } < '/w/stdin-1'"#), withStdin)
    }

    func testNULIsRefused() {
        XCTAssertNotNil(DriverLine.unusableReason("a\u{0}b"))
        XCTAssertNil(DriverLine.unusableReason("a b"))
    }
}
