import XCTest
import Glibc
import TetherProtocol

final class InterruptTests: RunspaceTestCase {
    private func interrupt(_ client: RunspaceClient, channel: UInt32 = 1) throws {
        let id = client.request(.signal(.interrupt), channel: channel)
        XCTAssertEqual(try client.response(to: id, channel: channel), .done)
    }

    /// Starts `script`, waits until it printed "ready", interrupts it, returns its end.
    private func interrupted(_ client: RunspaceClient, _ script: String) throws -> (CommandOutput, Double) {
        guard case .success(let id) = try client.start(script) else { throw RunspaceTestError("invoke failed") }
        let first = try client.nextRecord(channel: 1)
        XCTAssertEqual(first.kind, .commandStarted)
        let ready = try client.nextRecord(channel: 1)
        XCTAssertEqual(String(decoding: ready.body, as: UTF8.self), "ready\n")
        let began = Date()
        try interrupt(client)
        var result = try client.collect(commandID: id, timeout: 10)
        result.records.insert(contentsOf: [first, ready], at: 0)
        return (result, Date().timeIntervalSince(began))
    }

    func testInterruptEndsTheCommandButNotTheSession() throws {
        let client = try runspace.attachedClient()
        XCTAssertEqual(try client.run("x=41").exitStatus, 0)
        let (result, seconds) = try interrupted(client, "echo ready; sleep 100; echo not-reached")
        XCTAssertLessThan(seconds, 3, "interrupt took \(seconds)s")
        XCTAssertEqual(result.exitStatus, 130)
        XCTAssertFalse(result.stdoutText.contains("not-reached"))
        XCTAssertEqual(try client.run("echo $x").stdoutText, "41\n")
    }

    func testInterruptUnwindsFunctionsAndLoops() throws {
        let client = try runspace.attachedClient()
        let (inFunction, _) = try interrupted(client, "f(){ sleep 100; echo after-sleep; }; g(){ f; echo after-f; }; echo ready; g; echo after-g")
        XCTAssertEqual(inFunction.exitStatus, 130)
        XCTAssertEqual(inFunction.stdoutText, "", "nothing after the interrupt runs: \(inFunction.stdoutText)")
        let (loop, _) = try interrupted(client, "echo ready; while :; do :; done")
        XCTAssertEqual(loop.exitStatus, 130)
        // The trap must still be there for the next one (bash loses it otherwise).
        let (again, _) = try interrupted(client, "echo ready; sleep 100")
        XCTAssertEqual(again.exitStatus, 130)
        XCTAssertEqual(try client.run("g(){ echo fine; }; g").stdoutText, "fine\n")
    }

    func testInterruptSparesBackgroundJobs() throws {
        let client = try runspace.attachedClient()
        // Non-interactive bash starts a background command with SIGINT ignored; wait until
        // it is exec'd (an interrupt in the instant between fork and that would kill it).
        // (A compound background job, `{ …; } &`, gets SIGINT back at its default because
        // bash resets trapped signals in subshells: it shares the foreground's fate.)
        XCTAssertEqual(try client.run("""
            sleep 60 & bg=$!
            until [[ $(cat /proc/$bg/comm) == sleep ]]; do :; done
            grep -q '^SigIgn:.*[2367abef]$' /proc/$bg/status
            """).exitStatus, 0)
        let (result, _) = try interrupted(client, "echo ready; sleep 100")
        XCTAssertEqual(result.exitStatus, 130)
        XCTAssertEqual(try client.run("kill -0 $bg && echo alive; kill $bg").stdoutText, "alive\n")
    }

    func testInterruptBetweenCommandsDoesNothing() throws {
        let client = try runspace.attachedClient()
        try interrupt(client)
        XCTAssertEqual(try client.run("echo still here").stdoutText, "still here\n")
    }

    func testInterruptRightAfterStartIsNotLost() throws {
        let client = try runspace.attachedClient()
        for attempt in 1...10 {
            let invoke = client.request(.invoke(InvokeRequest(script: "sleep 100")), channel: 1)
            let signal = client.request(.signal(.interrupt), channel: 1)
            guard case .started(let id) = try client.response(to: invoke, channel: 1) else { return XCTFail() }
            XCTAssertEqual(try client.response(to: signal, channel: 1), .done)
            XCTAssertEqual(try client.collect(commandID: id, timeout: 5).exitStatus, 130, "attempt \(attempt)")
        }
        XCTAssertEqual(try client.run("echo alive").stdoutText, "alive\n")
    }

    func testStrayInterruptOfIdleBashDoesNotHitTheNextCommand() throws {
        let client = try runspace.attachedClient()
        XCTAssertEqual(try client.run("true").exitStatus, 0)
        kill(try runspace.bashPID(), SIGINT)
        let next = try client.run("echo unaffected")
        XCTAssertEqual(next.exitStatus, 0)
        XCTAssertEqual(next.stdoutText, "unaffected\n")
    }

    func testScriptLineNumbersAreTheUsers() throws {
        let client = try runspace.attachedClient()
        let result = try client.run("echo one\nno-such-command-here")
        XCTAssertTrue(result.stderrText.contains("line 2: no-such-command-here"), result.stderrText)
    }
}
