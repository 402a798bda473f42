import Glibc
import TetherIO
import TetherTestSupport
import XCTest
import Foundation
@testable import TetherSSH

/// The corpus: real-world configs (every row of issue 12's table and then some), each
/// resolved by Tether and by `ssh -G` run here directly, compared keyword by keyword for
/// every keyword Tether connects with.
final class OpenSSHCorpusTests: XCTestCase {
    struct Case {
        var name: String
        var config: String
        var destination: String
        var overrides = SSHOverrides()
        /// ssh's command-line spelling of the overrides (for the reference `ssh -G`).
        var sshArguments: [String] = []
        var environment: [String: String] = [:]
    }

    private var directory = ""
    private let home = Environment.homeDirectoryOfCurrentUser()

    override func setUpWithError() throws {
        var template = Array("/tmp/tether-corpus-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemError.last("mkdtemp")
        }
        directory = String(cString: made)
        let path = directory
        addTeardownBlock { _ = try? Processes.run("/bin/rm", ["-rf", path]) }
        try Descriptors.writeFile(directory + "/inc-a.conf", "Port 2601\nUser included\n", mode: 0o600)
        try Descriptors.writeFile(directory + "/inc-b.conf", "Port 2602\nHostName from-b.example\n", mode: 0o600)
    }

    private var cases: [Case] {
        let d = directory
        return [
            Case(name: "empty config: ssh's defaults", config: "", destination: "web1"),
            Case(name: "HostName Port User", config: "Host web1\n  HostName 10.0.0.5\n  Port 2222\n  User deploy\n", destination: "web1"),
            Case(name: "first value wins", config: "Host web1\n  Port 2222\nHost *\n  Port 2200\n  User star\n", destination: "web1"),
            Case(name: "patterns: wildcard, ?, negation", config: "Host !web9 web?\n  User wild\nHost *.corp\n  User corp\n", destination: "web1"),
            Case(name: "negated host does not match", config: "Host !web9 web?\n  User wild\n", destination: "web9"),
            Case(name: "user@host beats User", config: "Host web1\n  User config\n", destination: "cli@web1"),
            Case(name: "-l, -p win", config: "Host web1\n  User config\n  Port 2222\n", destination: "web1",
                 overrides: SSHOverrides(port: 2300, user: "flag"), sshArguments: ["-p", "2300", "-l", "flag"]),
            Case(name: "-o options win, first -o wins", config: "Host web1\n  Port 2222\n", destination: "web1",
                 overrides: overrides(options: ["Port=2500", "Port=2501", "User=opt"]),
                 sshArguments: ["-o", "Port=2500", "-o", "Port=2501", "-o", "User=opt"]),
            Case(name: "IdentityFile with tokens", config: "Host web1\n  HostName h.example\n  User u\n  IdentityFile ~/keys/%h-%r-%p-%n-%u-%d-%%\n  IdentityFile \(d)/id_%l_%L_%i\n", destination: "web1"),
            Case(name: "IdentityFile ${ENV}", config: "Host web1\n  IdentityFile ${TETHER_CORPUS_KEYS}/key\n", destination: "web1",
                 environment: ["TETHER_CORPUS_KEYS": d + "/env-keys"]),
            Case(name: "IdentitiesOnly + .pub IdentityFile (agent key)", config: "Host web1\n  IdentitiesOnly yes\n  IdentityFile \(d)/agent_key.pub\n", destination: "web1"),
            Case(name: "IdentityAgent path", config: "Host web1\n  IdentityAgent \(d)/agent.%h.sock\n", destination: "web1"),
            Case(name: "IdentityAgent none", config: "Host web1\n  IdentityAgent none\n", destination: "web1"),
            Case(name: "IdentityAgent SSH_AUTH_SOCK", config: "Host web1\n  IdentityAgent SSH_AUTH_SOCK\n", destination: "web1"),
            Case(name: "CertificateFile", config: "Host web1\n  CertificateFile ~/.ssh/%h-cert.pub\n", destination: "web1"),
            Case(name: "HostKeyAlias", config: "Host web1\n  HostKeyAlias web-cluster\n  Port 2222\n", destination: "web1"),
            Case(name: "UserKnownHostsFile and GlobalKnownHostsFile, tokens", config: "Host web1\n  UserKnownHostsFile ~/kh/%h %d/kh2\n  GlobalKnownHostsFile \(d)/global\n", destination: "web1"),
            Case(name: "UserKnownHostsFile none", config: "Host web1\n  UserKnownHostsFile none\n", destination: "web1"),
            Case(name: "StrictHostKeyChecking unset: ask", config: "Host web1\n  Port 22\n", destination: "web1"),
            Case(name: "StrictHostKeyChecking ask", config: "Host web1\n  StrictHostKeyChecking ask\n", destination: "web1"),
            Case(name: "StrictHostKeyChecking accept-new", config: "Host web1\n  StrictHostKeyChecking accept-new\n", destination: "web1"),
            Case(name: "StrictHostKeyChecking yes", config: "Host web1\n  StrictHostKeyChecking yes\n", destination: "web1"),
            Case(name: "StrictHostKeyChecking no", config: "Host web1\n  StrictHostKeyChecking no\n", destination: "web1"),
            Case(name: "HashKnownHosts yes", config: "Host web1\n  HashKnownHosts yes\n", destination: "web1"),
            Case(name: "AddressFamily inet6, BindAddress", config: "Host web1\n  AddressFamily inet6\n  BindAddress ::1\n", destination: "web1"),
            Case(name: "AddressFamily inet, BindAddress", config: "Host web1\n  AddressFamily inet\n  BindAddress 127.0.0.2\n", destination: "web1"),
            Case(name: "Ciphers, MACs, KexAlgorithms replaced", config: "Host web1\n  Ciphers aes256-ctr,aes128-ctr\n  MACs hmac-sha2-512\n  KexAlgorithms curve25519-sha256\n", destination: "web1"),
            Case(name: "Ciphers +/-/^ syntax", config: "Host web1\n  Ciphers -*gcm*\n  MACs +hmac-sha1-96\n  KexAlgorithms ^diffie-hellman-group14-sha256\n", destination: "web1"),
            Case(name: "HostKeyAlgorithms", config: "Host web1\n  HostKeyAlgorithms ssh-ed25519,ecdsa-sha2-nistp256\n", destination: "web1"),
            Case(name: "HostKeyAlgorithms +ssh-rsa", config: "Host web1\n  HostKeyAlgorithms +ssh-rsa\n", destination: "web1"),
            Case(name: "ConnectTimeout, ServerAliveInterval", config: "Host web1\n  ConnectTimeout 7\n  ServerAliveInterval 15\n", destination: "web1"),
            Case(name: "ProxyCommand with tokens", config: "Host web1\n  HostName inner\n  Port 2022\n  User pu\n  ProxyCommand nc -X connect %h %p # %r %n %%\n", destination: "web1"),
            Case(name: "ProxyJump, two hops", config: "Host web1\n  ProxyJump a@j1:2201,j2\n", destination: "web1"),
            Case(name: "ProxyJump first wins over ProxyCommand", config: "Host web1\n  ProxyJump j1\n  ProxyCommand nc %h %p\n", destination: "web1"),
            Case(name: "-J on the command line beats the config", config: "Host web1\n  ProxyCommand nc %h %p\n", destination: "web1",
                 overrides: overrides(jump: "hop@jumper:2200"), sshArguments: ["-J", "hop@jumper:2200"]),
            Case(name: "ProxyCommand none", config: "Host web1\n  ProxyCommand none\nHost *\n  ProxyJump j9\n", destination: "web1"),
            Case(name: "Include glob", config: "Include \(d)/inc-*.conf\nHost web1\n  User own\n", destination: "web1"),
            Case(name: "Include inside Host", config: "Host web1\n  Include \(d)/inc-b.conf\n", destination: "web1"),
            Case(name: "Include matching nothing", config: "Include \(d)/nothing-*.conf\nHost web1\n  Port 2900\n", destination: "web1"),
            Case(name: "Match host after HostName", config: "Host web1\n  HostName db.internal\nMatch host db.internal\n  Port 2700\n", destination: "web1"),
            Case(name: "Match originalhost, user, localuser", config: "Match originalhost web1 user cli\n  Port 2701\nMatch localuser \(Environment.userName())\n  User local-match\n", destination: "cli@web1"),
            Case(name: "Match exec true/false", config: "Match exec \"test 1 = 1\"\n  Port 2702\nMatch exec \"false\"\n  User never\n", destination: "web1"),
            Case(name: "Match exec with tokens", config: "Host web1\n  HostName execd\nMatch exec \"test %h = execd\"\n  User exec-token\n", destination: "web1"),
            Case(name: "Match canonical / final", config: "Match final\n  User final-pass\nMatch canonical\n  Port 2703\n", destination: "web1"),
            Case(name: "CanonicalizeHostname yes", config: "CanonicalizeHostname yes\nCanonicalDomains invalid\nCanonicalizeFallbackLocal yes\nHost web1\n  User canon\n", destination: "web1"),
            Case(name: "Match all", config: "Match all\n  User everybody\n", destination: "web1"),
            Case(name: "PreferredAuthentications, password prompts", config: "Host web1\n  PreferredAuthentications keyboard-interactive,password,publickey\n  NumberOfPasswordPrompts 5\n", destination: "web1"),
            Case(name: "BatchMode, auth methods, prompts", config: "Host web1\n  BatchMode yes\n  PasswordAuthentication no\n  KbdInteractiveAuthentication no\n  PubkeyAuthentication yes\n  NumberOfPasswordPrompts 1\n", destination: "web1"),
            Case(name: "PKCS11Provider, ControlPath", config: "Host web1\n  PKCS11Provider /usr/lib/p11.so\n  ControlMaster auto\n  ControlPath \(d)/cm-%C\n", destination: "web1"),
            Case(name: "Keyword=value, quotes, case", config: "HOST web1\n  hostname=\"quoted.example\"\n  PORT = 2704\n", destination: "web1"),
            Case(name: "IPv6 literal destination", config: "Host ::1\n  User six\n", destination: "[::1]:2705"),
            Case(name: "ssh:// destination", config: "Host web1\n  User config\n", destination: "ssh://uri@web1:2706"),
        ]
    }

    private func overrides(options: [String] = [], jump: String? = nil) -> SSHOverrides {
        var overrides = SSHOverrides()
        overrides.options = options
        overrides.jumpHosts = jump
        return overrides
    }

    func testCorpusHasEveryRow() {
        XCTAssertGreaterThanOrEqual(cases.count, 30)
    }

    func testEveryConfigResolvesExactlyAsSSHDoes() throws {
        let ssh = try XCTUnwrap(Spawn.findExecutable("ssh"))
        for (index, testCase) in cases.enumerated() {
            let file = "\(directory)/config-\(index)"
            try Descriptors.writeFile(file, testCase.config, mode: 0o600)
            for (name, value) in testCase.environment { setenv(name, value, 1) }
            defer { for name in testCase.environment.keys { unsetenv(name) } }

            let parsed = try SSHDestination(parsing: testCase.destination)
            var reference = ["ssh", "-G", "-F", file] + testCase.sshArguments
            if let user = parsed.user { reference += ["-l", user] }
            if let port = parsed.port { reference += ["-p", String(port)] }
            reference += ["--", parsed.host]
            let (status, output, errors) = try OpenSSHConfigQuery.capture(path: ssh, arguments: reference)
            XCTAssertEqual(status, .exited(0), "\(testCase.name): \(String(decoding: errors, as: UTF8.self))")
            let expected = SSHResolvedConfig(parsing: String(decoding: output, as: UTF8.self))

            var overrides = testCase.overrides
            overrides.configFile = file
            let resolution = try SSHConfig.resolution(testCase.destination, overrides: overrides)
            XCTAssertNotNil(resolution.config, testCase.name)
            compare(resolution.target, with: expected, alias: parsed.host, configFile: file, case: testCase.name)
        }
    }

    /// No -F: ssh reads ~/.ssh/config and /etc/ssh/ssh_config (Debian's sets HashKnownHosts
    /// yes and SendEnv), and so does Tether.
    func testWithoutConfigFileTheSystemConfigApplies() throws {
        let saved = getenv("TETHER_SSH_CONFIG").map { String(cString: $0) }
        unsetenv("TETHER_SSH_CONFIG")
        defer { if let saved { setenv("TETHER_SSH_CONFIG", saved, 1) } }
        let (_, output, _) = try OpenSSHConfigQuery.capture(path: try XCTUnwrap(Spawn.findExecutable("ssh")),
                                                            arguments: ["ssh", "-G", "--", "web1"])
        let expected = SSHResolvedConfig(parsing: String(decoding: output, as: UTF8.self))
        let resolution = try SSHConfig.resolution("web1", overrides: SSHOverrides())
        compare(resolution.target, with: expected, alias: "web1", configFile: "", case: "system config")
        XCTAssertEqual(resolution.config?.values("sendenv"), expected.values("sendenv"))
    }

    /// Keyword by keyword: what Tether will connect with against what ssh printed.
    private func compare(_ target: SSHTarget, with ssh: SSHResolvedConfig, alias: String, configFile: String, case name: String) {
        func check<T: Equatable>(_ keyword: String, _ ours: T, _ theirs: T, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(ours, theirs, "\(name): \(keyword)", file: file, line: line)
        }
        check("hostname", target.hostName, ssh.value("hostname"))
        check("port", String(target.port), ssh.value("port"))
        check("user", target.user, ssh.value("user"))
        check("identityfile", target.identityFiles, ssh.values("identityfile").map { expand($0, target: target, alias: alias) })
        check("identitiesonly", target.identitiesOnly, ssh.value("identitiesonly") == "yes")
        check("userknownhostsfile", target.knownHostsFiles, ssh.words("userknownhostsfile").filter { $0 != "none" })
        check("globalknownhostsfile", target.globalKnownHostsFiles, ssh.words("globalknownhostsfile").filter { $0 != "none" })
        let policy: String = switch ssh.value("stricthostkeychecking") {
        case "true", "yes": "yes"
        case "false", "no", "off": "no"
        case let other: other ?? "ask"
        }
        check("stricthostkeychecking", target.strictHostKeyChecking.rawValue, policy)
        check("connecttimeout", target.connectTimeout.map { String(Int($0)) } ?? "none", ssh.value("connecttimeout") ?? "none")
        check("serveraliveinterval", String(Int(target.serverAliveInterval ?? 0)), ssh.value("serveraliveinterval") ?? "0")
        check("hostkeyalias", target.preferences.hostKeyAlias, ssh.value("hostkeyalias"))
        check("knownHostsName", target.knownHostsName, ssh.value("hostkeyalias")
              ?? (target.port == 22 ? target.hostName : "[\(target.hostName)]:\(target.port)"))
        check("bindaddress", target.preferences.bindAddress, ssh.value("bindaddress"))
        check("addressfamily", target.preferences.addressFamily, ssh.value("addressfamily") ?? "any")
        check("ciphers", target.preferences.ciphers, ssh.list("ciphers"))
        check("macs", target.preferences.macs, ssh.list("macs"))
        check("kexalgorithms", target.preferences.kexAlgorithms, ssh.list("kexalgorithms"))
        check("hostkeyalgorithms", target.preferences.hostKeyAlgorithms, ssh.list("hostkeyalgorithms"))
        let agent: String? = switch ssh.value("identityagent") {
        case nil, "SSH_AUTH_SOCK": nil
        case let other: other
        }
        check("identityagent", target.preferences.identityAgent, agent)
        check("hashknownhosts", target.preferences.hashKnownHosts, ssh.value("hashknownhosts") == "yes")
        check("pubkeyauthentication", target.preferences.publicKeyAuthentication, ssh.value("pubkeyauthentication") != "no")
        check("passwordauthentication", target.preferences.passwordAuthentication, ssh.value("passwordauthentication") == "yes")
        check("kbdinteractiveauthentication", target.preferences.keyboardInteractiveAuthentication, ssh.value("kbdinteractiveauthentication") == "yes")
        check("batchmode", target.preferences.batchMode, ssh.value("batchmode") == "yes")
        check("numberofpasswordprompts", String(target.preferences.passwordPrompts), ssh.value("numberofpasswordprompts"))
        if let order = ssh.value("preferredauthentications") {
            check("preferredauthentications", target.preferences.preferredAuthentications, order.split(separator: ",").map(String.init))
        }
        // The proxy: ProxyCommand with its tokens expanded, or ProxyJump run as ssh runs it.
        if let command = ssh.value("proxycommand"), command != "none" {
            let expanded = command.replacingOccurrences(of: "%%", with: "\u{1}")
                .replacingOccurrences(of: "%h", with: target.hostName).replacingOccurrences(of: "%p", with: String(target.port))
                .replacingOccurrences(of: "%r", with: target.user).replacingOccurrences(of: "%n", with: alias)
                .replacingOccurrences(of: "\u{1}", with: "%")
            check("proxycommand", target.proxyCommand, ["/bin/sh", "-c", "exec " + expanded])
        } else if let jump = ssh.value("proxyjump"), jump != "none" {
            let hops = jump.split(separator: ",").map(String.init)
            var argv = ["ssh", "-F", configFile]
            if hops.count > 1 { argv += ["-J", hops.dropLast().joined(separator: ",")] }
            argv += ["-W", target.endpoint, "--", "ssh://" + hops.last!]
            check("proxyjump", target.proxyCommand, argv)
        } else {
            check("proxy", target.proxyCommand, nil)
        }
    }

    /// ssh expands IdentityFile at connect time; the same tokens, spelled out here.
    private func expand(_ path: String, target: SSHTarget, alias: String) -> String {
        var text = path
        if text.hasPrefix("~/") { text = home + text.dropFirst(1) }
        if let start = text.firstRange(of: "${"), let end = text[start.upperBound...].firstIndex(of: "}") {
            let name = String(text[start.upperBound..<end])
            text.replaceSubrange(start.lowerBound...end, with: getenv(name).map { String(cString: $0) } ?? "")
        }
        let host = Environment.hostName()
        let pairs: [(String, String)] = [
            ("%%", "\u{1}"), ("%h", target.hostName), ("%r", target.user), ("%p", String(target.port)), ("%n", alias),
            ("%u", Environment.userName()), ("%d", home), ("%l", host),
            ("%L", String(host.prefix { $0 != "." })), ("%i", String(getuid())), ("\u{1}", "%"),
        ]
        for (token, value) in pairs { text = text.replacingOccurrences(of: token, with: value) }
        return text
    }
}
