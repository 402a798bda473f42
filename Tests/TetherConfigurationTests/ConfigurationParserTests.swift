import XCTest
@testable import TetherConfiguration

final class ConfigurationParserTests: XCTestCase {
    func testAFullRestrictedConfiguration() {
        let text = """
        # Operators may look, not touch.
        Description "Read-only operations"
        Kind restricted
        AllowGroups ops wheel
        Environment LANG=C.UTF-8 TZ=UTC
        WorkingDirectory /var/log
        IdleTimeout 30m
        MaxIdleTimeout 1h30m
        OutputBuffering drop
        MaxSessionsPerUser 2
        Transcript yes
        Command /usr/bin/uptime
        command /bin/echo *
        Command /usr/bin/journalctl -u [a-z]* **
        """
        let (configuration, diagnostics) = ConfigurationParser.parse(text, name: "ops", file: "/etc/tether/configurations.d/ops.conf")
        XCTAssertEqual(diagnostics, [])
        XCTAssertEqual(configuration.kind, .restricted)
        XCTAssertEqual(configuration.description, "Read-only operations")
        XCTAssertEqual(configuration.access.allowGroups, ["ops", "wheel"])
        XCTAssertEqual(configuration.environment.map(\.assignment), ["LANG=C.UTF-8", "TZ=UTC"])
        XCTAssertEqual(configuration.idleTimeout, 1800)
        XCTAssertEqual(configuration.maxIdleTimeout, 5400)
        XCTAssertEqual(configuration.outputBuffering, "drop")
        XCTAssertEqual(configuration.maxSessionsPerUser, 2)
        XCTAssertTrue(configuration.transcript)
        XCTAssertEqual(configuration.commands.map(\.description),
                       ["Command /usr/bin/uptime", "Command /bin/echo *", "Command /usr/bin/journalctl -u [a-z]* **"])
        XCTAssertEqual(configuration.commands[2].location, "ops.conf:14")
        XCTAssertTrue(configuration.commands[2].admitsMore)
    }

    func testEveryMistakeIsReportedWithItsLine() {
        let text = """
        Kind restricted
        AllowUser alice
        Transcript maybe
        Command uptime
        Command /bin/echo [abc
        Command /bin/ls ** -l
        IdleTimeout soon
        StartupScript /etc/profile
        Environment 1X=2
        Description "unterminated
        Kind shell
        """
        let (_, diagnostics) = ConfigurationParser.parse(text, name: "bad", file: "bad.conf")
        let lines = diagnostics.map(\.description)
        XCTAssertTrue(lines.contains("bad.conf:2: unknown keyword \"AllowUser\" (did you mean AllowUsers?)"), "\(lines)")
        XCTAssertTrue(lines.contains("bad.conf:3: Transcript must be yes or no, not \"maybe\""), "\(lines)")
        XCTAssertTrue(lines.contains("bad.conf:4: Command uptime: the program must be given by its absolute path"), "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("bad.conf:5: Command /bin/echo, argument pattern 1 \"[abc\": has a [ with no closing ]") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("bad.conf:6: Command /bin/ls, argument pattern 1 \"**\": ** admits any further arguments and must be the last") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("bad.conf:7: IdleTimeout must be a time") }, "\(lines)")
        XCTAssertTrue(lines.contains("bad.conf:8: StartupScript is for Kind shell: a restricted configuration runs no shell"), "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("bad.conf:9: Environment 1X=2: \"1X\" is not a variable name") }, "\(lines)")
        XCTAssertTrue(lines.contains("bad.conf:10: unterminated quote"), "\(lines)")
        XCTAssertTrue(lines.contains("bad.conf:11: Kind is already set on line 1"), "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("bad.conf:1: Kind restricted without AllowUsers or AllowGroups is for nobody") }, "\(lines)")
    }

    func testShellConfigurationsTakeNoCommandRules() {
        let (_, diagnostics) = ConfigurationParser.parse("Command /bin/true\n", name: "s", file: "s.conf")
        XCTAssertEqual(diagnostics.map(\.line), [1])
        XCTAssertTrue(diagnostics[0].message.hasPrefix("Command rules are for Kind restricted"))
    }

    func testDurations() {
        XCTAssertEqual(ConfigurationParser.parseDuration("90"), 90)
        XCTAssertEqual(ConfigurationParser.parseDuration("2h"), 7200)
        XCTAssertEqual(ConfigurationParser.parseDuration("1h30m"), 5400)
        XCTAssertEqual(ConfigurationParser.parseDuration("1w"), 604800)
        XCTAssertNil(ConfigurationParser.parseDuration("h"))
        XCTAssertNil(ConfigurationParser.parseDuration("10x"))
        XCTAssertNil(ConfigurationParser.parseDuration(""))
    }

    func testAccessFollowsSshdOrder() {
        var rules = AccessRules()
        XCTAssertNil(rules.refusal(user: "alice", groups: ["alice"], kind: .shell), "shell: everybody by default")
        XCTAssertNotNil(rules.refusal(user: "alice", groups: ["alice"], kind: .restricted), "restricted: nobody by default")
        rules.allowGroups = ["ops"]
        XCTAssertNil(rules.refusal(user: "alice", groups: ["alice", "ops"], kind: .restricted))
        XCTAssertEqual(rules.refusal(user: "bob", groups: ["bob"], kind: .restricted), "user bob is in none of AllowGroups ops")
        rules.denyUsers = ["al*"]
        XCTAssertEqual(rules.refusal(user: "alice", groups: ["ops"], kind: .restricted), "user alice matches DenyUsers al*")
        var shell = AccessRules()
        shell.denyGroups = ["restricted-only"]
        XCTAssertEqual(shell.refusal(user: "carol", groups: ["carol", "restricted-only"], kind: .shell),
                       "user carol is in group restricted-only, which matches DenyGroups restricted-only")
    }
}
