import CTetherSSHCipher
import Glibc
import TetherIO
import TetherTestSupport
import XCTest
@testable import TetherSSH

/// libssh2's AES-CTR through the batched keystream (CTetherSSHCipher): in effect, and
/// every byte still right both ways — through packet boundaries, window adjusts and
/// keystream refills, with several connections (cipher contexts) on one loop.
final class CipherBatchingTests: SSHFixtureTestCase {
    func testLibSSH2CipherCallsAreBatched() throws {
        SSHLibrary.initialize()
        let refusal = tether_ssh_cipher_refusal().map { String(cString: $0) }
        if SSHLibrary.isAtLeast1_11 {
            // 1.11 batches blocks itself: the patch must stay off, whoever asks.
            XCTAssertFalse(SSHLibrary.batchesCipherBlocks, "libssh2 \(SSHLibrary.version) must not be patched")
            XCTAssertEqual(tether_ssh_cipher_known_answer(), 0)
            XCTAssertEqual(refusal, "libssh2 1.11 or later batches AES-CTR itself")
            return
        }
        XCTAssertTrue(SSHLibrary.batchesCipherBlocks,
                      "libssh2's EVP_Cipher slot was not redirected: \(refusal ?? "no reason given")")
    }

    /// The guard against libssh2 changing how it uses a cipher context: the speed-up is
    /// only correct while libssh2 touches a CTR context through EVP_CIPHER_CTX_new,
    /// EVP_CipherInit, EVP_Cipher and EVP_CIPHER_CTX_free alone, one block per call. A
    /// libssh2 that imports any other cipher-context call (EVP_CipherUpdate, reading the
    /// IV, copying a context…) is left unpatched with that reason — and this test fails,
    /// so the change is looked at rather than silently run slower. With the patch in,
    /// NIST SP 800-38A's AES-128-CTR vectors must come out of the very functions
    /// libssh2's slots point at, used as libssh2 1.10 uses them.
    func testTheBatchedKeystreamGivesTheKnownAnswersThroughLibSSH2sSlots() throws {
        SSHLibrary.initialize()
        try XCTSkipIf(SSHLibrary.isAtLeast1_11, "libssh2 \(SSHLibrary.version) batches AES-CTR itself; nothing is patched")
        let refusal = tether_ssh_cipher_refusal().map { String(cString: $0) }
        XCTAssertNil(refusal, "libssh2 \(SSHLibrary.version) is not patched: \(refusal ?? "")")
        XCTAssertEqual(tether_ssh_cipher_known_answer(), 1,
                       "AES-128-CTR through libssh2's redirected EVP calls differs from NIST SP 800-38A F.5")
    }

    func testEchoedBytesSurviveTheKeystreamBothWays() throws {
        let before = SSHLibrary.cipherKeystreamRefills
        // Odd sizes: packets and keystream refills fall at every offset.
        for size in [1, 4095, 4097, 3 << 20 + 13] {
            _ = try assertEchoWorks(target(), size: size)
        }
        if SSHLibrary.isAtLeast1_11 {
            XCTAssertEqual(SSHLibrary.cipherKeystreamRefills, before, "libssh2 1.11 ciphers on its own")
        } else {
            XCTAssertGreaterThan(SSHLibrary.cipherKeystreamRefills, before,
                                 "the data did not go through the batched keystream")
        }
    }

    func testConnectionsSideBySideKeepTheirOwnKeystreams() throws {
        let harness = try ConnectionHarness()
        let payloads = (0..<4).map { n in (0..<(1 << 20) + n * 977).map { UInt8(truncatingIfNeeded: $0 &* (n + 3)) } }
        let probes = payloads.map { payload in
            harness.add(target(), onReady: { connection, _ in
                connection.write(payload)
                connection.sendEOF()
            })
        }
        harness.run(timeout: 120)
        for (probe, payload) in zip(probes, payloads) {
            XCTAssertNil(probe.error)
            XCTAssertTrue(probe.received == payload, "echoed bytes differ")
        }
    }
}
