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
        if SSHLibrary.isAtLeast1_11 {
            // 1.11 batches AES-CTR itself: the stopgap stays off.
            XCTAssertFalse(SSHLibrary.batchesCipherBlocks, "libssh2 \(SSHLibrary.version) must not be patched")
            return
        }
        XCTAssertTrue(SSHLibrary.batchesCipherBlocks,
                      "libssh2's EVP_Cipher slot was not redirected (libssh2 not found, or not OpenSSL-based?)")
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
