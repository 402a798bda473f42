import XCTest
import TetherProtocol

final class StdinTests: RunspaceTestCase {
    func testStdinDataAndEOFReachTheCommand() throws {
        let client = try runspace.attachedClient()
        XCTAssertEqual(try client.run("tr a-z A-Z", stdin: Array("hello tether\n".utf8)).stdoutText, "HELLO TETHER\n")
        XCTAssertEqual(try client.run("wc -c", stdin: Array("12345".utf8)).stdoutText, "5\n")
        XCTAssertEqual(try client.run("wc -c", stdin: []).stdoutText, "0\n", "EOF at once")
    }

    func testLargeStdinInManyFrames() throws {
        let client = try runspace.attachedClient()
        guard case .success(let id) = try client.start("wc -c; echo done", stdin: true) else { return XCTFail("invoke failed") }
        let chunk = [UInt8](repeating: UInt8(ascii: "y"), count: 200_000)
        for _ in 0..<15 { client.stdin(chunk, channel: 1) }  // 3 MB: more than the FIFO and the queue mark
        client.stdinEOF(channel: 1)
        let result = try client.collect(commandID: id, timeout: 30)
        XCTAssertEqual(result.stdoutText, "3000000\ndone\n")
    }

    func testCommandWithoutStdinReadsEOF() throws {
        let client = try runspace.attachedClient()
        let result = try client.run("cat; read line; echo \"read=$? done\"")
        XCTAssertEqual(result.stdoutText, "read=1 done\n")
    }

    func testStdinForAnEndedCommandIsDiscarded() throws {
        let client = try runspace.attachedClient()
        guard case .success(let id) = try client.start("echo not reading", stdin: true) else { return XCTFail("invoke failed") }
        XCTAssertEqual(try client.collect(commandID: id).stdoutText, "not reading\n")
        client.stdin(Array("late\n".utf8), channel: 1)
        client.stdinEOF(channel: 1)
        let next = try client.run("echo next; ls \(runspace.workDirectory)")
        XCTAssertEqual(next.stdoutText, "next\nbin\ncommand.sh\nrun.sh\nstreams\nstreams.ack\n",
                       "the FIFO of the ended command is gone; the script and driver files are reused (bin and the streams FIFOs are the session's)")
    }

    func testInterruptWhileReadingStdin() throws {
        let client = try runspace.attachedClient()
        guard case .success(let id) = try client.start("echo ready; read line; echo got=$line", stdin: true) else { return XCTFail("invoke failed") }
        XCTAssertEqual(try client.nextRecord(channel: 1).kind, .commandStarted)
        XCTAssertEqual(try client.nextRecord(channel: 1).body, Array("ready\n".utf8))
        _ = client.request(.signal(.interrupt), channel: 1)
        let result = try client.collect(commandID: id, timeout: 10)
        XCTAssertEqual(result.exitStatus, 130)
        XCTAssertEqual(try client.run("echo alive").stdoutText, "alive\n")
    }
}

/// The session's work directory is just files: a command that deletes them (or the whole
/// directory) must not break the commands after it.
final class WorkDirectoryRepairTests: RunspaceTestCase {
    func testCommandsGoOnAfterACommandRemovesTheDriverFiles() throws {
        let client = try runspace.attachedClient()
        XCTAssertEqual(try client.run("kept=yes; rm -f \"$__tether_w\"/*.sh").exitStatus, 0)
        XCTAssertEqual(try client.run("echo $kept").stdoutText, "yes\n")
        XCTAssertEqual(try client.run("cd /; rm -rf \"$__tether_w\"").exitStatus, 0)
        let after = try client.run("echo still $kept; cat", stdin: Array("piped\n".utf8))
        XCTAssertEqual(after.stdoutText, "still yes\npiped\n")
        XCTAssertEqual(after.exitStatus, 0)
    }
}
