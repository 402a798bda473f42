import Glibc
import TetherIO
import TetherTestSupport
import XCTest
@testable import TetherSSH

/// What libssh2 1.11 adds (docs/architecture.md, "libssh2 1.11"). The pairing and
/// ordering rules run on any version; the logins need 1.11 linked — CI has 1.10, so run
/// them with `scripts/libssh2-1.11 swift test --scratch-path .build-libssh2-1.11 …`.
final class LibSSH2ElevenTests: SSHFixtureTestCase {
    /// A CA, a user key and its certificate kept away from the key (so only the
    /// CertificateFile line can pair them); returns (key, certificate, CA public key).
    private func certifiedKey(principal: String) throws -> (key: String, certificate: String, ca: String) {
        try Processes.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ca", "-f", "\(scratch)/ca"])
        let key = try makeKey("certified", authorize: false)
        try Processes.check("ssh-keygen", ["-q", "-s", "\(scratch)/ca", "-I", "test", "-n", principal, key + ".pub"])
        let certificate = "\(scratch)/elsewhere-cert.pub"
        XCTAssertEqual(rename(key + "-cert.pub", certificate), 0)
        return (key, certificate, "\(scratch)/ca.pub")
    }

    func testACertificateFilePairsWithTheIdentityFileItCertifies() throws {
        let (key, certificate, _) = try certifiedKey(principal: fixture.user)
        let other = try makeKey("other", authorize: false)
        let blob = { (path: String) in try? IdentityFile.load(path).get().publicKeyBlob }
        XCTAssertEqual(UserCertificates.certificate(for: key, publicKey: blob(key), certificateFiles: [certificate]), certificate)
        XCTAssertNil(UserCertificates.certificate(for: other, publicKey: blob(other), certificateFiles: [certificate]))
        // A KEY-cert.pub beside the key needs no CertificateFile.
        try Processes.check("/bin/cp", [certificate, other + "-cert.pub"])
        XCTAssertEqual(UserCertificates.certificate(for: other, publicKey: blob(other), certificateFiles: []), other + "-cert.pub")
        // Unpaired: a certificate no identity file's private key goes with.
        let identities = [key, other].compactMap { try? IdentityFile.load($0).get() }
        XCTAssertEqual(UserCertificates.unpaired([certificate], identities: identities), [])
        XCTAssertEqual(UserCertificates.unpaired([certificate], identities: identities.filter { $0.path == other }), [certificate])
    }

    func testACertificateLogsInThroughLibSSH2WhenItIsAtLeast1_11() throws {
        try XCTSkipUnless(SSHLibrary.isAtLeast1_11, "needs libssh2 1.11 linked (scripts/libssh2-1.11), this is \(SSHLibrary.version)")
        let (key, certificate, ca) = try certifiedKey(principal: fixture.user)
        let trusting = try SSHDFixture(SSHDFixture.Options(sshdConfig: ["TrustedUserCAKeys \(ca)"]))
        defer { trusting.stop() }
        var target = SSHTarget(alias: "trusting", hostName: "127.0.0.1", port: Int(trusting.port), user: trusting.user,
                               identityFiles: [key], identitiesOnly: true, knownHostsFiles: [trusting.knownHostsPath],
                               strictHostKeyChecking: .yes, connectTimeout: 10, subsystem: "echo")
        target.globalKnownHostsFiles = []
        target.preferences.certificateFiles = [certificate]
        let config = SSHResolvedConfig(lines: [(keyword: "certificatefile", value: certificate)])
        XCTAssertEqual(LibSSH2Limits.reasons(target: target, config: config), [], "nothing sends it to OpenSSH")
        _ = try assertEchoWorks(target)
        XCTAssertTrue(trusting.sshdLog.contains("Accepted certificate ID \"test\""), trusting.sshdLog)
    }
}
