import XCTest
import TetherProtocol

/// How bash's output is cut into records (`OutputPipe`'s hold): a command that streams is
/// read in big chunks, a command that writes now and then is read as it writes.
final class OutputBatchingTests: RunspaceTestCase {
    /// A writer of 4 KiB per write(2), like `head -c` or `cat`. Read as each write lands,
    /// that is a record (and a frame and a wake-up of every process on the path) per few
    /// KiB — 1,000–2,000 records of 8–16 KiB for these 16 MiB, measured without the hold;
    /// with it 120–170, ~100–140 KiB each.
    func testAStreamingCommandIsJournaledInBigRecords() throws {
        let client = try runspace.attachedClient()
        let bytes = 16 << 20
        // bash's own printf: 4 KiB per write(2), as fast as the loop goes.
        let script = "b=$(head -c 4096 /dev/zero | tr '\\0' x); for ((i = 0; i < 4096; i++)); do printf %s \"$b\"; done"
        let started = try client.start(script, arguments: [], stdin: false, channel: 1)
        guard case .success(let commandID) = started else { return XCTFail("invoke failed: \(started)") }
        let output = try client.collect(commandID: commandID, every: FlowControl.ackInterval, timeout: 60)
        XCTAssertEqual(output.stdout.count, bytes)
        XCTAssertTrue(output.stdout.allSatisfy { $0 == UInt8(ascii: "x") })
        XCTAssertEqual(output.exitStatus, 0)
        let records = output.records.filter { $0.kind == .stdout }
        XCTAssertGreaterThanOrEqual(bytes / max(records.count, 1), 32 * 1024,
                                    "\(records.count) stdout records for \(bytes) bytes")
    }

    /// Lines written apart arrive apart: a hold never merges output that came with pauses
    /// (0.2 s here, far past the 2 ms within which reads count as one stream).
    func testOutputNowAndThenIsReadAsItIsWritten() throws {
        let client = try runspace.attachedClient()
        let result = try client.run("for i in 1 2 3 4; do echo $i; sleep 0.2; done")
        XCTAssertEqual(result.stdoutText, "1\n2\n3\n4\n")
        XCTAssertEqual(result.records.filter { $0.kind == .stdout }.map { String(decoding: $0.body, as: UTF8.self) },
                       ["1\n", "2\n", "3\n", "4\n"])
    }
}
