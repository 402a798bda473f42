import XCTest
import TetherProtocol

/// Commands run on a pseudo-terminal (invoke flag 16) in the session's own shell.
final class TerminalCommandTests: RunspaceTestCase {
    private let terminal = TerminalRequest(term: "xterm-256color", size: TerminalSize(rows: 33, columns: 101))

    private func runOnTerminal(_ client: RunspaceClient, _ script: String, keys: [UInt8]? = nil) throws -> CommandOutput {
        guard case .success(let id) = try client.start(script, terminal: terminal) else {
            throw RunspaceTestError("invoke refused")
        }
        if let keys { client.stdin(keys, channel: 1) }
        return try client.collect(commandID: id)
    }

    func testCommandHasATerminalWithTheClientsSizeAndTerm() throws {
        let client = try runspace.attachedClient()
        let result = try runOnTerminal(client, "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty; stty size; echo $TERM; tty >/dev/tty")
        XCTAssertEqual(result.exitStatus, 0, result.stdoutText)
        let lines = result.stdoutText.split(separator: "\r\n").map(String.init)
        XCTAssertEqual(Array(lines.prefix(3)), ["tty", "33 101", "xterm-256color"], result.stdoutText)
        XCTAssertTrue(lines.last?.hasPrefix("/dev/pts/") ?? false, "/dev/tty works: \(result.stdoutText)")
        XCTAssertEqual(result.stderr, [], "stderr goes through the terminal too")
        // Without a terminal again: no controlling terminal, stdout a pipe.
        let plain = try client.run("[ -t 1 ] || echo pipe; tty; cat /dev/tty 2>/dev/null || echo no-tty")
        XCTAssertEqual(plain.stdoutText, "pipe\nnot a tty\nno-tty\n")
    }

    func testStatePersistsAcrossTerminalCommands() throws {
        let client = try runspace.attachedClient()
        XCTAssertEqual(try runOnTerminal(client, "cd /tmp; answer=42").exitStatus, 0)
        XCTAssertEqual(try client.run("echo $answer $PWD").stdoutText, "42 /tmp\n")
        XCTAssertEqual(try runOnTerminal(client, "echo $answer $PWD").stdoutText, "42 /tmp\r\n")
    }

    func testKeystrokesReachTheProgramAndCtrlCInterruptsIt() throws {
        let client = try runspace.attachedClient()
        let read = try runOnTerminal(client, "read -r line; echo \"got $line\"", keys: Array("hello\r".utf8))
        XCTAssertEqual(read.stdoutText, "hello\r\ngot hello\r\n", "echoed by the terminal, then the answer")
        guard case .success(let id) = try client.start("echo ready; sleep 30; echo no", terminal: terminal) else {
            return XCTFail("refused")
        }
        XCTAssertEqual(try client.nextRecord(channel: 1).kind, .commandStarted)
        XCTAssertEqual(try client.nextRecord(channel: 1).kind, .stdout)
        client.stdin([0x03], channel: 1)  // Ctrl-C typed at the terminal
        let interrupted = try client.collect(commandID: id, timeout: 10)
        XCTAssertEqual(interrupted.exitStatus, 130)
        XCTAssertEqual(try client.run("echo alive").stdoutText, "alive\n")
    }

    func testResizeReachesTheProgram() throws {
        let client = try runspace.attachedClient()
        guard case .success(let id) = try client.start(
            "trap 'stty size; exit 0' WINCH; echo waiting; while :; do sleep 0.1; done", terminal: terminal) else {
            return XCTFail("refused")
        }
        XCTAssertEqual(try client.nextRecord(channel: 1).kind, .commandStarted)
        XCTAssertEqual(try client.nextRecord(channel: 1).kind, .stdout)
        let resize = client.request(.resize(TerminalSize(rows: 40, columns: 120)), channel: 1)
        XCTAssertEqual(try client.response(to: resize, channel: 1), .done)
        let result = try client.collect(commandID: id, timeout: 10)
        XCTAssertTrue(result.stdoutText.contains("40 120"), result.stdoutText)
        XCTAssertEqual(result.exitStatus, 0)
    }

    /// Terminal output is journaled like any output: a client that did not acknowledge it
    /// (a cut link) gets the same records again, with their sequence numbers, by receive.
    func testTerminalOutputIsJournaledForReceive() throws {
        var first: RunspaceClient? = try runspace.attachedClient()
        guard case .success(let id) = try first!.start("printf 'screen line\\n'; tty", terminal: terminal) else {
            return XCTFail("refused")
        }
        let seen = try first!.collect(commandID: id, acknowledge: false)
        XCTAssertTrue(seen.stdoutText.hasPrefix("screen line\r\n/dev/pts/"), seen.stdoutText)
        first = nil  // gone without acknowledging
        let receiver = try runspace.connect(clientID: "client-a")
        let info = try receiver.attach(channel: 2, instanceID: runspace.instanceID, receive: true)
        var replay: [Record] = []
        while replay.last?.kind != .commandEnded { replay.append(try receiver.nextRecord(channel: 2)) }
        XCTAssertEqual(replay.map(\.seq), seen.records.map(\.seq), "the same records, same sequence numbers")
        XCTAssertEqual(replay.map(\.body), seen.records.map(\.body))
        XCTAssertEqual(info.lastSeq, seen.records.last?.seq)
    }
}
