import Glibc
import TetherIO
import TetherTestSupport
import XCTest
@testable import TetherSSH

/// known_hosts policies against a real sshd (ed25519 + ECDSA host keys).
final class HostKeyTests: SSHFixtureTestCase {
    private var knownName: String { "[127.0.0.1]:\(fixture.port)" }

    private func hostKeyLine(_ type: String) -> String {
        let path = fixture.configuration.hostKeyPaths[type == "ed25519" ? 0 : 1] + ".pub"
        let fields = readText(path).split(separator: " ")
        return "\(knownName) \(fields[0]) \(fields[1])\n"
    }

    func testKnownHostMatches() throws {
        _ = try assertEchoWorks(target())
    }

    func testHostKnownOnlyByItsECDSAKeyIsRecognised() throws {
        // libssh2 1.10 would pick whichever type it likes; we ask for the known type.
        let file = "\(scratch)/known_hosts"
        try Descriptors.writeFile(file, "# only ecdsa\n" + hostKeyLine("ecdsa"), mode: 0o600)
        _ = try assertEchoWorks(target(knownHosts: [file]))
        let file2 = "\(scratch)/known_hosts2"
        try Descriptors.writeFile(file2, hostKeyLine("ed25519"), mode: 0o600)
        _ = try assertEchoWorks(target(knownHosts: [file2]))
    }

    func testChangedKeyIsRefusedUnlessPolicyNo() throws {
        let impostor = try makeKey("impostor", authorize: false)
        let fields = readText(impostor + ".pub").split(separator: " ")
        let file = "\(scratch)/known_hosts"
        try Descriptors.writeFile(file, "\(knownName) \(fields[0]) \(fields[1])\n", mode: 0o600)
        for policy in [HostKeyPolicy.yes, .acceptNew] {
            let probe = try assertFails(target(knownHosts: [file], policy: policy), kind: .hostKeyChanged, within: 5,
                                        messageContains: ["host key has changed", "man-in-the-middle",
                                                          "ssh-keygen -R '\(knownName)' -f \(file)", "\(file):1", "SHA256:"])
            print("changed key: \(probe.error!)")
        }
        XCTAssertEqual(readText(file).split(separator: "\n").count, 1, "accept-new must not add a changed key")
        let probe = try assertEchoWorks(target(knownHosts: [file], policy: .no))
        XCTAssertTrue(probe.notices.contains { $0.contains("host key has changed") })
    }

    func testUnknownHostRefusedWithYesAndAddedWithAcceptNew() throws {
        let file = "\(scratch)/new/dir/known_hosts"
        let probe = try assertFails(target(knownHosts: [file], policy: .yes), kind: .hostKeyUnknown, within: 5,
                                    messageContains: ["not known", "ssh-keyscan -p \(fixture.port) 127.0.0.1 >> \(file)", "accept-new"])
        print("unknown host: \(probe.error!)")
        XCTAssertNil(Descriptors.readFile(file))

        let added = try assertEchoWorks(target(knownHosts: [file], policy: .acceptNew))
        XCTAssertTrue(added.notices.contains { $0.contains("permanently added '\(knownName)'") }, "\(added.notices)")
        let text = readText(file)
        XCTAssertTrue(text.hasPrefix("\(knownName) ssh-ed25519 "), text)
        var info = stat()
        XCTAssertEqual(stat(file, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        XCTAssertEqual(stat("\(scratch)/new/dir", &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o700)

        // Next time it is known, even with policy yes; and OpenSSH agrees with our line.
        _ = try assertEchoWorks(target(knownHosts: [file], policy: .yes))
        let ssh = try Processes.run("ssh", ["-F", "/dev/null", "-p", String(fixture.port), "-i", fixture.clientKeyPath,
                                            "-o", "UserKnownHostsFile=\(file)", "-o", "StrictHostKeyChecking=yes",
                                            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "GlobalKnownHostsFile=/dev/null",
                                            fixture.destination, "true"])
        XCTAssertEqual(ssh.status, .exited(0), ssh.stderrText)
    }

    func testAcceptNewAppendsAfterALineWithoutNewline() throws {
        let file = "\(scratch)/known_hosts"
        try Descriptors.writeFile(file, "other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", mode: 0o600)
        _ = try assertEchoWorks(target(knownHosts: [file], policy: .acceptNew))
        let lines = readText(file).split(separator: "\n")
        XCTAssertEqual(lines.count, 2, readText(file))
        XCTAssertTrue(lines.last?.hasPrefix(knownName) == true)
    }

    func testHashedEntriesMatch() throws {
        let file = "\(scratch)/known_hosts"
        try Descriptors.writeFile(file, "# unrelated\nfoo.example,bar.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n" + hostKeyLine("ed25519"), mode: 0o600)
        try Processes.check("ssh-keygen", ["-H", "-f", file])
        let text = readText(file)
        XCTAssertFalse(text.contains("127.0.0.1"), "ssh-keygen -H should have hashed the names")
        XCTAssertTrue(text.contains("|1|"))
        _ = try assertEchoWorks(target(knownHosts: [file], policy: .yes))

        // A hashed line with another key for this host is a change, not "unknown".
        let impostor = try makeKey("impostor", authorize: false)
        let fields = readText(impostor + ".pub").split(separator: " ")
        let changed = "\(scratch)/known_hosts_changed"
        try Descriptors.writeFile(changed, "\(knownName) \(fields[0]) \(fields[1])\n", mode: 0o600)
        try Processes.check("ssh-keygen", ["-H", "-f", changed])
        _ = try assertFails(target(knownHosts: [changed], policy: .acceptNew), kind: .hostKeyChanged, within: 5)
    }

    func testWildcardAndRevokedLines() throws {
        let file = "\(scratch)/known_hosts"
        let fields = hostKeyLine("ed25519").split(separator: " ")
        try Descriptors.writeFile(file, "[127.0.0.*]:\(fixture.port),!nothing \(fields[1]) \(fields[2])", mode: 0o600)
        _ = try assertEchoWorks(target(knownHosts: [file], policy: .yes))

        try Descriptors.writeFile(file, hostKeyLine("ed25519") + "@revoked * \(fields[1]) \(fields[2])", mode: 0o600)
        _ = try assertFails(target(knownHosts: [file], policy: .acceptNew), kind: .hostKeyChanged, within: 5,
                            messageContains: ["@revoked"])
    }

    func testKnownHostsUnitParsing() throws {
        let session = try XCTUnwrap(libssh2_session_init_ex_for_tests())
        defer { libssh2_session_free(session) }
        let file = "\(scratch)/kh"
        let key = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        let long = String(repeating: "x", count: 5000)
        try Descriptors.writeFile(file, """
            garbage line
            \(long).example ssh-ed25519 \(key)
            web1,web2 ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBGJ3
            web1 ssh-ed25519 \(key)
            @cert-authority *.example ssh-ed25519 \(key)
            """, mode: 0o600)
        let known = KnownHosts(files: [file])
        // Long lines and garbage don't hide the lines after them (libssh2's readfile would).
        XCTAssertEqual(known.keyTypes(for: "web1", session: session), ["ecdsa-sha2-nistp256", "ssh-ed25519"])
        XCTAssertEqual(known.keyTypes(for: "web2", session: session), ["ecdsa-sha2-nistp256"])
        XCTAssertEqual(known.keyTypes(for: "\(long).example", session: session), ["ssh-ed25519"])
        XCTAssertTrue(known.problems.contains { $0.hasPrefix("\(file):1:") })
    }
}

import CLibSSH2
func libssh2_session_init_ex_for_tests() -> OpaquePointer? {
    SSHLibrary.initialize()
    return libssh2_session_init_ex(nil, nil, nil, nil)
}
