import XCTest
@testable import TetherCLI
import TetherClient

/// The pure half of implicit remoting: reading the session's list, names, the bash printed.
final class ImplicitRemotingUnitTests: XCTestCase {
    func testDiscoveryOutputSeparatesNamesFromTheSessionsOwnOutput() {
        let output = Array("job says hi\nT1\tf\tdeploy\nT1\ta\tll\nT1x\tc\tnot-ours\nT1\tc\tcat\npartial".utf8)
        let (commands, other) = ImplicitRemoting.parseDiscovery(output, token: "T1")
        XCTAssertEqual(commands.map(\.name), ["cat", "deploy", "ll"])
        XCTAssertEqual(commands.map(\.kind), [.program, .function, .alias])
        XCTAssertEqual(String(decoding: other, as: UTF8.self), "job says hi\nT1x\tc\tnot-ours\npartial")
    }

    func testOnlyPortableNamesBecomeFunctions() {
        for good in ["ls", "git-lfs", "python3.11", "a:b", "c++", "x@y", "_f", "7z"] {
            XCTAssertTrue(ImplicitRemoting.isPortableName(good), good)
        }
        for bad in ["", "-x", "a b", "a'b", "a$b", "[", "a/b", "é", "a=b"] {
            XCTAssertFalse(ImplicitRemoting.isPortableName(bad), bad)
        }
    }

    func testCodeNamesTheSessionAndItsConnection() {
        var options = ConnectionOptions(configFile: "/etc/my ssh", port: 2222, user: "deploy", identityFiles: ["/k"])
        options.sshOptions = ["Compression=yes"]
        let session = ImplicitRemoting.SessionReference(
            tether: "/opt/tether/bin/tether", computerName: "web1", name: "it's", instanceID: "abc",
            connection: options, configuration: "ops", idleTimeout: 600, outputBuffering: .drop, bufferLimit: 4096,
            jobLimit: nil)
        let plan = ImplicitRemoting.Plan(session: session, commands: [.init(name: "ll", kind: .alias)], prefix: "r_",
                                         allowClobber: false, restoresSession: true, madeBy: "tether export")
        let code = ImplicitRemoting.code(plan)
        let helper = "__tether_s_\(session.tag)"
        XCTAssertTrue(code.contains(#"\command /opt/tether/bin/tether invoke --computer web1 --name 'it'\''s' -F '/etc/my ssh' -p 2222 -l deploy -i /k -o Compression=yes -- "$@""#), code)
        XCTAssertTrue(code.contains(#"\command /opt/tether/bin/tether export --restore-session --computer web1 --name 'it'\''s' --configuration ops --idle-timeout 600 --output-buffering drop --buffer-limit 4096 -F"#), code)
        XCTAssertTrue(code.contains("if __tether_may_define r_ll \(helper) 0; then function r_ll { \(helper) 'll \"$@\"' \"$@\"; }; fi"), code)
        XCTAssertEqual(ImplicitRemoting.escapedPattern(#"a\b"#), #"a\\b"#)
    }
}
