import Glibc
import TetherTestSupport
import TetherIO
import XCTest
@testable import TetherSSH

final class SSHConfigTests: XCTestCase {
    private let home = Environment.get("HOME") ?? Environment.homeDirectoryOfCurrentUser()

    private func resolve(_ destination: String, _ config: String, _ overrides: SSHOverrides = SSHOverrides()) throws -> SSHTarget {
        try SSHConfig.resolve(destination, configText: config, overrides: overrides)
    }

    func testDestinationForms() throws {
        XCTAssertEqual(try SSHDestination(parsing: "web1"), SSHDestination(host: "web1"))
        XCTAssertEqual(try SSHDestination(parsing: "ops@web1"), SSHDestination(user: "ops", host: "web1"))
        XCTAssertEqual(try SSHDestination(parsing: "ops@web1:2222"), SSHDestination(user: "ops", host: "web1", port: 2222))
        XCTAssertEqual(try SSHDestination(parsing: "web1:2222"), SSHDestination(host: "web1", port: 2222))
        XCTAssertEqual(try SSHDestination(parsing: "[::1]:2222"), SSHDestination(host: "::1", port: 2222))
        XCTAssertEqual(try SSHDestination(parsing: "ops@[fe80::1]"), SSHDestination(user: "ops", host: "fe80::1"))
        XCTAssertEqual(try SSHDestination(parsing: "::1"), SSHDestination(host: "::1"))
        XCTAssertEqual(try SSHDestination(parsing: "ssh://ops@web1:22/"), SSHDestination(user: "ops", host: "web1", port: 22))
    }

    func testBadDestinationsSayWhy() {
        for (bad, why) in [("", "empty"), ("@web1", "user name"), ("web1:http", "port 'http'"), ("web1:70000", "65535"),
                           ("[::1", "closing"), ("ops@", "host name is empty"), ("a b", "space")] {
            XCTAssertThrowsError(try SSHDestination(parsing: bad), bad) { error in
                let error = error as! SSHError
                XCTAssertEqual(error.kind, .configuration)
                XCTAssertTrue(error.message.contains(why), "\(bad): \(error.message)")
            }
        }
    }

    func testDefaultsWithoutConfig() throws {
        let target = try resolve("web1", "")
        XCTAssertEqual(target.hostName, "web1")
        XCTAssertEqual(target.port, 22)
        XCTAssertEqual(target.user, Environment.userName())
        XCTAssertEqual(target.identityFiles, ["\(home)/.ssh/id_ed25519", "\(home)/.ssh/id_ecdsa", "\(home)/.ssh/id_rsa"])
        XCTAssertEqual(target.knownHostsFiles, ["\(home)/.ssh/known_hosts", "\(home)/.ssh/known_hosts2"])
        XCTAssertEqual(target.strictHostKeyChecking, .acceptNew)
        XCTAssertNil(target.connectTimeout)
        XCTAssertEqual(target.subsystem, "tether")
        XCTAssertFalse(target.identitiesOnly)
    }

    func testHostPatternsFirstValueWins() throws {
        let config = """
        # comment
        Host web?  db*
            HostName %h.example.com
            Port 2200
            User deploy
        Host web1
            Port 9999
            User nobody
            IdentityFile ~/.ssh/web1_%r_%h
        Host *
            Port 22
            User fallback
            IdentityFile=%d/.ssh/all
            ConnectTimeout 1m30s
            ServerAliveInterval 15
            StrictHostKeyChecking no
            IdentitiesOnly yes
        """
        let web1 = try resolve("web1", config)
        XCTAssertEqual(web1.hostName, "web1.example.com")
        XCTAssertEqual(web1.port, 2200, "the first Port wins")
        XCTAssertEqual(web1.user, "deploy")
        // IdentityFile accumulates across blocks, in order, with tokens expanded.
        XCTAssertEqual(web1.identityFiles, ["\(home)/.ssh/web1_deploy_web1.example.com", "\(home)/.ssh/all"])
        XCTAssertEqual(web1.connectTimeout, 90)
        XCTAssertEqual(web1.serverAliveInterval, 15)
        XCTAssertEqual(web1.strictHostKeyChecking, .no)
        XCTAssertTrue(web1.identitiesOnly)

        let other = try resolve("other", config)
        XCTAssertEqual(other.hostName, "other")
        XCTAssertEqual(other.port, 22)
        XCTAssertEqual(other.user, "fallback")
        XCTAssertEqual(other.identityFiles, ["\(home)/.ssh/all"])

        XCTAssertEqual(try resolve("db-7", config).hostName, "db-7.example.com")
        XCTAssertEqual(try resolve("web12", config).port, 22, "'?' matches exactly one character")
        XCTAssertEqual(try resolve("WEB1", config).port, 2200, "host patterns ignore case")
    }

    func testNegationVetoesTheBlock() throws {
        let config = """
        Host *.corp !bastion.corp
            User corp
        Host *
            User plain
        """
        XCTAssertEqual(try resolve("app.corp", config).user, "corp")
        XCTAssertEqual(try resolve("bastion.corp", config).user, "plain")
        XCTAssertEqual(try resolve("example.org", config).user, "plain")
        // A list of only negations matches nothing.
        XCTAssertEqual(try resolve("x", "Host !y\n User neg\n").user, Environment.userName())
    }

    func testDestinationAndOverridesWin() throws {
        let config = """
        Host web1
            HostName 10.0.0.5
            Port 2200
            User deploy
            IdentityFile ~/.ssh/configured
            StrictHostKeyChecking yes
        """
        let fromDestination = try resolve("ops@web1:2300", config)
        XCTAssertEqual(fromDestination.user, "ops")
        XCTAssertEqual(fromDestination.port, 2300)
        XCTAssertEqual(fromDestination.hostName, "10.0.0.5")
        XCTAssertEqual(fromDestination.alias, "web1")
        XCTAssertEqual(fromDestination.strictHostKeyChecking, .yes)

        let overridden = try resolve("ops@web1:2300", config, SSHOverrides(
            port: 2400, user: "root", identityFiles: ["~/k1"], subsystem: "echo",
            connectTimeout: 3, strictHostKeyChecking: .acceptNew))
        XCTAssertEqual(overridden.user, "root")
        XCTAssertEqual(overridden.port, 2400)
        XCTAssertEqual(overridden.identityFiles, ["\(home)/k1", "\(home)/.ssh/configured"])
        XCTAssertEqual(overridden.subsystem, "echo")
        XCTAssertEqual(overridden.connectTimeout, 3)
        XCTAssertEqual(overridden.strictHostKeyChecking, .acceptNew)
        XCTAssertEqual(overridden.displayName, "web1 (10.0.0.5:2400)")
        XCTAssertEqual(overridden.knownHostsName, "[10.0.0.5]:2400")
    }

    func testKnownHostsFilesAndEqualsSyntax() throws {
        let config = """
        Host=web1
          UserKnownHostsFile = /tmp/kh1 "/tmp/with space/kh2"
          GlobalKnownHostsFile none
        """
        let target = try resolve("web1", config)
        XCTAssertEqual(target.knownHostsFiles, ["/tmp/kh1", "/tmp/with space/kh2"])
        XCTAssertEqual(target.globalKnownHostsFiles, [])
    }

    func testMatchAndInclude() throws {
        let directory = try temporaryDirectory()
        try write("\(directory)/extra.conf", "Host inc\n  User included\n")
        let config = """
        Include \(directory)/*.conf
        Match host inc
          Port 2201
        Match originalhost other
          Port 2202
        Match exec "true"
          Port 1
        Match all
          Port 2203
        """
        let included = try resolve("inc", config)
        XCTAssertEqual(included.user, "included")
        XCTAssertEqual(included.port, 2201)
        XCTAssertEqual(try resolve("other", config).port, 2202)
        XCTAssertEqual(try resolve("third", config).port, 2203, "unsupported Match criteria never match")
    }

    func testConfigFileFromOverridesAndMissingFileIsEmpty() throws {
        let directory = try temporaryDirectory()
        try write("\(directory)/config", "Host web1\n  Port 2345\n")
        XCTAssertEqual(try SSHConfig.resolve("web1", overrides: SSHOverrides(configFile: "\(directory)/config")).port, 2345)
        XCTAssertEqual(try SSHConfig.resolve("web1", overrides: SSHOverrides(configFile: "\(directory)/absent")).port, 22)
    }

    func testBadValuesNameFileAndLine() {
        let cases: [(String, String)] = [
            ("Host web1\n  Port abc\n", "(config text):2: Port 'abc' is not a number"),
            ("Host web1\n  StrictHostKeyChecking maybe\n", "(config text):2: StrictHostKeyChecking must be"),
            ("Host web1\n  ConnectTimeout soon\n", "(config text):2: connecttimeout 'soon' is not a time"),
            ("Host\n", "(config text):1: Host needs at least one pattern"),
            ("Host web1\n  IdentityFile ~/.ssh/%q\n", "unknown token '%q'"),
            ("Host web1\n  ProxyJump bastion,,last\n", "ProxyJump needs [user@]host[:port] jump hosts"),
            ("Host web1\n  ProxyCommand nc %h %z\n", "unknown token '%z'"),
            ("Host web1\n  User \"unterminated\n", "unterminated quote"),
        ]
        for (config, expected) in cases {
            XCTAssertThrowsError(try resolve("web1", config)) { error in
                let error = error as! SSHError
                XCTAssertEqual(error.kind, .configuration)
                XCTAssertTrue(error.message.contains(expected), "expected '\(expected)' in: \(error.message)")
            }
        }
        // Bad values in blocks that don't apply are not our business (as with ssh).
        XCTAssertNoThrow(try resolve("db1", "Host web1\n  Port abc\n"))
    }

    func testProxyCommandIsTheRestOfTheLineWithTokensExpanded() throws {
        let target = try resolve("web1", """
            Host web1
              HostName 10.0.0.5
              Port 2200
              User deploy
              ProxyCommand = sh -c 'echo "%h %p %r %n" >&2; exec nc %h %p'   
            """)
        XCTAssertEqual(target.proxyCommand,
                       ["/bin/sh", "-c", #"exec sh -c 'echo "10.0.0.5 2200 deploy web1" >&2; exec nc 10.0.0.5 2200'"#])
        XCTAssertNil(try resolve("web1", "Host web1\n  ProxyCommand none\n").proxyCommand)
        XCTAssertNil(try resolve("web1", "Host web1\n  Port 22\n").proxyCommand)
    }

    func testProxyJumpRunsSSHWithJForEarlierHopsAndFForAnOwnConfigFile() throws {
        let one = try resolve("web1", "Host web1\n  HostName 10.0.0.5\n  ProxyJump admin@bastion:2222\n")
        XCTAssertEqual(one.proxyCommand, ["ssh", "-W", "10.0.0.5:22", "--", "ssh://admin@bastion:2222"])
        let hops = try resolve("web1", "Host web1\n  HostName fe80::1\n  Port 2200\n  ProxyJump a, b,c\n")
        XCTAssertEqual(hops.proxyCommand, ["ssh", "-J", "a,b", "-W", "[fe80::1]:2200", "--", "ssh://c"])

        let directory = try temporaryDirectory()
        try write("\(directory)/config", "Host web1\n  ProxyJump bastion\n")
        let fromFile = try SSHConfig.resolve("web1", overrides: SSHOverrides(configFile: "\(directory)/config"))
        XCTAssertEqual(fromFile.proxyCommand, ["ssh", "-F", "\(directory)/config", "-W", "web1:22", "--", "ssh://bastion"])
    }

    func testWhicheverOfProxyJumpAndProxyCommandComesFirstWins() throws {
        let jumpFirst = try resolve("web1", "Host web1\n  ProxyJump bastion\nHost *\n  ProxyCommand nc %h %p\n")
        XCTAssertEqual(jumpFirst.proxyCommand?.first, "ssh")
        let commandFirst = try resolve("web1", "Host *\n  ProxyCommand nc %h %p\nHost web1\n  ProxyJump bastion\n")
        XCTAssertEqual(commandFirst.proxyCommand, ["/bin/sh", "-c", "exec nc web1 22"])
        XCTAssertNil(try resolve("web1", "Host web1\n  ProxyJump none\nHost *\n  ProxyCommand nc %h %p\n").proxyCommand)
    }

    func testHostPatternMatcher() {
        XCTAssertTrue(HostPattern.matches("web1.example.com", pattern: "*.example.com"))
        XCTAssertTrue(HostPattern.matches("a", pattern: "*"))
        XCTAssertTrue(HostPattern.matches("[10.0.0.5]:2222", pattern: "[10.0.0.*]:2222"))
        XCTAssertFalse(HostPattern.matches("example.com", pattern: "*.example.com"))
        XCTAssertTrue(HostPattern.matches("abcabd", pattern: "*ab?"))
        XCTAssertFalse(HostPattern.matches("ab", pattern: "a?b"))
        XCTAssertTrue(HostPattern.listMatches("x.corp", patterns: ["*.corp", "!y.corp"]))
        XCTAssertFalse(HostPattern.listMatches("y.corp", patterns: ["*.corp", "!y.corp"]))
    }

    // MARK: Helpers

    func temporaryDirectory() throws -> String {
        var template = Array("/tmp/tssh-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemError.last("mkdtemp")
        }
        let path = String(cString: made)
        addTeardownBlock { _ = try? Processes.run("/bin/rm", ["-rf", path]) }
        return path
    }

    func write(_ path: String, _ text: String) throws {
        try Descriptors.writeFile(path, text, mode: 0o600)
    }
}
