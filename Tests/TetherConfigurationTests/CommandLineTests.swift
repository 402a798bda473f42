import XCTest
@testable import TetherConfiguration

final class CommandLineTests: XCTestCase {
    let rules = [
        CommandRule(path: "/usr/bin/uptime", patterns: [], admitsMore: false, location: "ops.conf:3"),
        CommandRule(path: "/bin/echo", patterns: ["*"], admitsMore: false, location: "ops.conf:4"),
        CommandRule(path: "/usr/bin/sudo", patterns: ["-n", "/usr/bin/systemctl", "restart", "nginx"], admitsMore: false, location: "ops.conf:5"),
    ]

    func decide(_ line: String, _ extra: [String] = []) -> CommandPolicy.Decision {
        switch CommandLineWords.split(line, extra: extra) {
        case .failure(let refusal): return .refused(refusal.message)
        case .success(let words): return CommandPolicy.decide(words, rules: rules)
        }
    }

    func testQuotingSplitsLikeAShellThatExpandsNothing() throws {
        XCTAssertEqual(try CommandLineWords.split("echo 'a b'  \"c d\" e'f'\"g\" ''").get(), ["echo", "a b", "c d", "efg", ""])
        XCTAssertEqual(try CommandLineWords.split("echo 'a;b|$(c)`d`'").get(), ["echo", "a;b|$(c)`d`"])
        XCTAssertEqual(try CommandLineWords.split("echo", extra: ["x; y", "$HOME"]).get(), ["echo", "x; y", "$HOME"])
    }

    func testAllowedLines() {
        XCTAssertEqual(decide("uptime"), .allowed(rule: rules[0], arguments: []))
        XCTAssertEqual(decide("/usr/bin/uptime"), .allowed(rule: rules[0], arguments: []))
        XCTAssertEqual(decide("echo hi"), .allowed(rule: rules[1], arguments: ["hi"]))
        XCTAssertEqual(decide("echo 'two words'"), .allowed(rule: rules[1], arguments: ["two words"]))
        XCTAssertEqual(decide("echo", ["hi"]), .allowed(rule: rules[1], arguments: ["hi"]))
        XCTAssertEqual(decide("sudo -n /usr/bin/systemctl restart nginx"),
                       .allowed(rule: rules[2], arguments: ["-n", "/usr/bin/systemctl", "restart", "nginx"]))
    }

    func testEscapesAreRefusedWithTheReason() {
        let attempts: [(String, String)] = [
            ("uptime; touch /tmp/x", "; (a command separator) at byte 7"),
            ("uptime && touch /tmp/x", "& (background or &&)"),
            ("uptime | sh", "| (a pipe or ||)"),
            ("echo $(touch /tmp/x)", "$ (an expansion)"),
            ("echo `touch /tmp/x`", "` (command substitution)"),
            ("echo \"$(id)\"", "$ (an expansion) at byte 7 inside double quotes"),
            ("echo hi > /tmp/x", "> (a redirection)"),
            ("echo < /etc/shadow", "< (a redirection)"),
            ("echo *", "* (a glob)"),
            ("echo ~root", "~ (home directory expansion)"),
            ("LD_PRELOAD=/tmp/evil.so uptime", "environment assignments are not accepted"),
            ("PATH=/tmp uptime", "environment assignments are not accepted"),
            ("/bin/sh -c id", "/bin/sh is not the path of any Command rule"),
            ("sh", "no Command rule allows a program named \"sh\""),
            ("./uptime", "never by a relative path"),
            ("../../usr/bin/uptime", "never by a relative path"),
            ("/usr/bin/../bin/uptime", "/usr/bin/../bin/uptime is not the path of any Command rule"),
            ("echo hi there", "Command /bin/echo * (ops.conf:4): takes 1 argument, not 2"),
            ("uptime --help", "Command /usr/bin/uptime (ops.conf:3): takes 0 arguments, not 1"),
            ("sudo -n /usr/bin/systemctl restart sshd", "argument 4 \"sshd\" does not match \"nginx\""),
            ("sudo /bin/sh", "takes 4 arguments, not 1"),
            ("еcho hi", "no Command rule allows a program named \"еcho\""),  // Cyrillic е
            ("ｕptime", "no Command rule allows a program named"),  // fullwidth u
            ("uptime\ntouch /tmp/x", "a newline (one command per line) at byte 7"),
            ("echo a\u{0}b", "a NUL byte at byte 7"),
            ("", "an empty command line"),
            ("echo 'unterminated", "an unterminated ' quote"),
            (String(repeating: "a", count: 9000), "at most 8192 are accepted"),
        ]
        for (line, reason) in attempts {
            guard case .refused(let message) = decide(line) else {
                XCTFail("\(line.debugDescription) was allowed")
                continue
            }
            XCTAssertTrue(message.contains(reason), "\(line.debugDescription): \(message)")
        }
        guard case .refused(let message) = decide("echo", ["a\u{0}"]) else { return XCTFail("NUL in an argument") }
        XCTAssertTrue(message.contains("argument 1 contains a NUL byte"), message)
    }

    func testGlobPatternChecks() {
        XCTAssertNil(GlobPattern.problem(with: "[!-]*"))
        XCTAssertNil(GlobPattern.problem(with: "[]a]"))
        XCTAssertNotNil(GlobPattern.problem(with: "[abc"))
        XCTAssertNotNil(GlobPattern.problem(with: "abc\\"))
        XCTAssertNotNil(GlobPattern.problem(with: "a\tb"))
        XCTAssertTrue(GlobPattern.matches("[!-]*", "nginx"))
        XCTAssertFalse(GlobPattern.matches("[!-]*", "--force"))
    }
}
