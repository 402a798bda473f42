import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// Big output records reach sshd by splice(2) from the runspace's socket, never read into
/// the subsystem (`SplicedOutputTests` checks the relay by itself). Here the whole path —
/// sshd, the keeper, the CLI — with binary output: a CLI stopped mid-stream holds
/// everything back and then gets every byte; a relay killed mid-stream is a cut link,
/// and the resume brings exactly the rest.
final class SplicedStreamCLITests: CLITestCase {
    func testAStoppedCLIHoldsTheStreamBackThenGetsEveryByte() throws {
        let file = try binaryFile(size: 24 << 20)
        try check(["new", "alpha", "--name", "s"])
        let cli = try startTether(["invoke", "--name", "s", "--", "cat \(file.path)"], label: "stopped")
        try eventually(timeout: 60, "output to start") { fileSize(cli.stdoutPath) > 2 << 20 }
        XCTAssertEqual(kill(cli.pid, SIGSTOP), 0)
        usleep(2_000_000)
        XCTAssertLessThan(fileSize(cli.stdoutPath), file.bytes.count, "the stream ended while the CLI was stopped")
        XCTAssertEqual(kill(cli.pid, SIGCONT), 0)
        XCTAssertEqual(try cli.wait(timeout: 120), .exited(0), cli.stderrText)
        let received = Descriptors.readFile(cli.stdoutPath) ?? []
        XCTAssertTrue(received == file.bytes, "\(received.count) bytes, not the file's \(file.bytes.count)")
    }

    func testARelayKilledMidStreamIsAResumeWithExactlyTheRest() throws {
        let file = try binaryFile(size: 32 << 20)
        try check(["new", "alpha", "--name", "s"])
        let cli = try startTether(["invoke", "--name", "s", "--", "cat \(file.path)"], label: "cut")
        try eventually(timeout: 60, "output to start") { fileSize(cli.stdoutPath) > 4 << 20 }
        // The serve process sshd started, splicing: stdout ends inside a frame.
        let relay = try XCTUnwrap(alpha.subsystemPIDs().first)
        try Processes.kill9(relay)
        XCTAssertEqual(try cli.wait(timeout: 120), .exited(0), cli.stderrText)
        let received = Descriptors.readFile(cli.stdoutPath) ?? []
        XCTAssertTrue(received == file.bytes, "\(received.count) bytes, not the file's \(file.bytes.count)")
    }

    /// `size` pseudo-random bytes (every byte value, no lines) in a file, and its contents.
    private func binaryFile(size: Int) throws -> (path: String, bytes: [UInt8]) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBytes { raw in
            for index in raw.bindMemory(to: UInt64.self).indices {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                raw.storeBytes(of: state, toByteOffset: index * 8, as: UInt64.self)
            }
        }
        let path = workDirectory + "/binary.bin"
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw TestSupportError("cannot write \(path)")
        }
        return (path, bytes)
    }

    private func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }
}
