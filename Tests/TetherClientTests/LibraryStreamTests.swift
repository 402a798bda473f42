import XCTest
import Foundation
import Glibc
@testable import TetherClient
import TetherIO
import TetherProtocol
import TetherTestSupport

/// Output streamed through the library in-process (no keeper), the path `tether-bench
/// stream` measures: big records' bodies are read by libssh2 into arrays of their own and
/// handed to the consumer as they are, and a parked consumer is woken once per turn of
/// the loop. Every byte arrives, in order, stdout and stderr apart; a consumer that reads
/// slowly holds the client to the host's window — it never buffers more.
final class LibraryStreamTests: CLITestCase {
    private func connect() async throws -> RemoteHost {
        let client = try TetherClient(home: ClientHome(directory: tetherHome), keeper: .never)
        return try await client.connect("alpha", options: ConnectionOptions(configFile: sshConfigPath))
    }

    func testBigOutputArrivesWholeInOrderWithStdoutAndStderrApart() async throws {
        let host = try await connect()
        let session = try await host.createSession(name: "big")
        // Records big enough to be read apart, small ones between them, both streams.
        let script = """
            for i in 1 2 3 4 5 6; do
              head -c 700000 /dev/zero | tr '\\0' "$i"
              echo "small $i"
              head -c 90000 /dev/zero | tr '\\0' "e" >&2
            done
            """
        let run = try await session.invoke(script)
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var chunks = 0
        for try await chunk in run.output {
            chunks += 1
            switch chunk {
            case .stdout(let bytes): stdout += bytes
            case .stderr(let bytes): stderr += bytes
            default: XCTFail("unexpected \(chunk)")
            }
        }
        let status = try await run.exitStatus
        XCTAssertEqual(status, 0)
        var expected: [UInt8] = []
        for i in 1...6 {
            expected += [UInt8](repeating: UInt8(ascii: "0") + UInt8(i), count: 700_000)
            expected += Array("small \(i)\n".utf8)
        }
        XCTAssertEqual(stdout.count, expected.count)
        XCTAssertTrue(stdout == expected, "stdout differs from what the command wrote, in content or order")
        XCTAssertEqual(stderr, [UInt8](repeating: UInt8(ascii: "e"), count: 6 * 90_000))
        XCTAssertGreaterThan(chunks, 12)
        try await host.remove(instanceID: session.instanceID)
        await host.close()
    }

    func testASlowConsumerHoldsTheClientToTheHostsWindow() async throws {
        let host = try await connect()
        let session = try await host.createSession(name: "slow")
        let size = 40_000_000
        let run = try await session.invoke("head -c \(size) /dev/zero")
        var received = 0
        var taken = 0
        // Not reading for a second, then slowly: the host's window stops the stream, and
        // nothing beyond it waits in this process.
        try await Task.sleep(nanoseconds: 1_000_000_000)
        for try await chunk in run.output {
            if case .stdout(let bytes) = chunk { received += bytes.count }
            taken += 1
            if taken <= 40 { try await Task.sleep(nanoseconds: 20_000_000) }
        }
        let status = try await run.exitStatus
        XCTAssertEqual(status, 0)
        XCTAssertEqual(received, size)
        let peak = run.output.queue.peakBufferedByteCount
        print("output waiting for the slow consumer at most: \(peak) bytes")
        XCTAssertGreaterThan(peak, 0)
        // The host may overshoot its window by one record (SendWindow.isOpen).
        XCTAssertLessThanOrEqual(peak, FlowControl.channelWindow + Record.maxDataLength,
                                 "the client buffered \(peak) bytes for a slow consumer, beyond the host's window")
        try await host.remove(instanceID: session.instanceID)
        await host.close()
    }
}
