import XCTest
import Foundation
import Glibc
import TetherTestSupport

/// The scenarios where a client goes away mid-command (taken over, `kill -9`): run once
/// through the client keeper and once with direct connections, because a killed CLI is
/// a different event on each path.
extension TwoClientTestCase {
    /// 40 lines in about 4 seconds, for tests that stop a reader mid-command.
    static let slowLoop = "for i in $(seq 1 40); do echo \"line $i\"; sleep 0.1; done"

    /// `slowLoop` that stops after line 10 until the file `$1` exists: a takeover made
    /// meanwhile lands while the command is still running, however loaded the machine.
    static let gatedSlowLoop = "for i in $(seq 1 40); do echo \"line $i\"; if [ $i = 10 ]; then while [ ! -e \"$1\" ]; do sleep 0.05; done; fi; sleep 0.1; done"

    func forceTakesOverALiveCommand() throws {
        try check(["new", "alpha", "--name", "shared"], home: firstHome)
        try check(["invoke", "--name", "shared", "--", "counter=7"], home: firstHome)
        // The first client streams a command; the second takes the session mid-way.
        let gate = workDirectory + "/shared.gate"
        let streaming = try spawnTether(["invoke", "--name", "shared", "--", Self.gatedSlowLoop, gate], home: firstHome, label: "streaming")
        try waitUntil("the first client printed 5 lines") { lineNumbers(streaming.stdoutText).count >= 5 }

        let refused = try tether(["connect", "--computer", "alpha", "--name", "shared"], home: secondHome)
        XCTAssertEqual(refused.status, .exited(1), refused.stderrText)
        XCTAssertTrue(refused.stderrText.contains("held by client \(machineName)"), refused.stderrText)

        let forced = try tether(["connect", "--computer", "alpha", "--name", "shared", "--force"], home: secondHome)
        XCTAssertEqual(forced.status, .exited(0), forced.stderrText)
        XCTAssertTrue(forced.stderrText.contains("took over session shared from \(machineName)"), forced.stderrText)
        XCTAssertTrue(forced.stdoutText.contains("Opened"), forced.stdoutText)
        try writeFile(gate, "")  // the command goes on after the takeover

        // The first client is told, and stops; the command goes on.
        let status = try streaming.wait(timeout: 20)
        XCTAssertEqual(status, .exited(1), streaming.stderrText)
        XCTAssertTrue(streaming.stderrText.contains("taken over"), streaming.stderrText)
        let printed = lineNumbers(streaming.stdoutText)
        XCTAssertEqual(printed, Array(1...max(1, printed.count)), "the first part is in order")

        // The new holder receives the rest: nothing lost, nothing repeated within it.
        let rest = try tether(["receive", "--name", "shared"], home: secondHome)
        XCTAssertEqual(rest.status, .exited(0), rest.stderrText)
        let received = lineNumbers(rest.stdoutText)
        let start = try XCTUnwrap(received.first, "receive printed \(rest.stdoutText)")
        XCTAssertEqual(received, Array(start...40))
        XCTAssertLessThanOrEqual(start, printed.count + 1, "no gap between what the first printed and the rest")

        // State is kept across the takeover; the first is now the one refused.
        XCTAssertEqual(try check(["invoke", "--name", "shared", "--", "echo \"$counter $i\""], home: secondHome), "7 40\n")
        let first = try XCTUnwrap(try getJSON(home: firstHome).first)
        XCTAssertEqual(first["state"] as? String, "Disconnected")
        XCTAssertEqual(first["availability"] as? String, "Busy")
        let again = try tether(["invoke", "--name", "shared", "--", "true"], home: firstHome)
        XCTAssertEqual(again.status, .exited(1), again.stderrText)
    }

    func clientKilledMidCommandSameClientReceives() throws {
        try check(["new", "alpha", "--name", "crash"], home: firstHome)
        let run = try spawnTether(["invoke", "--name", "crash", "--", Self.slowLoop], home: firstHome, label: "crash")
        try waitUntil("output began") { lineNumbers(run.stdoutText).count >= 5 }
        try run.kill9()
        let printed = lineNumbers(run.stdoutText)
        XCTAssertEqual(printed, Array(1...printed.count), "in order up to the kill")
        XCTAssertLessThan(printed.count, 40, "killed mid-command")

        // A crashed client still holds its session (nothing silently changes hands).
        let held = try XCTUnwrap(try getJSON(home: firstHome).first)
        XCTAssertEqual(held["state"] as? String, "Opened")
        let other = try remoteSession("crash", home: secondHome)
        XCTAssertEqual(other["availability"] as? String, "Busy")

        let rest = try tether(["receive", "--name", "crash"], home: firstHome)
        XCTAssertEqual(rest.status, .exited(0), rest.stderrText)
        let received = lineNumbers(rest.stdoutText)
        let start = try XCTUnwrap(received.first, "receive printed \(rest.stdoutText)")
        XCTAssertEqual(received, Array(start...40), "every remaining line exactly once, in order")
        XCTAssertLessThanOrEqual(start, printed.count + 1, "nothing lost between the kill and the receive")

        // All of it was acknowledged now.
        let after = try tether(["receive", "--name", "crash"], home: firstHome)
        XCTAssertEqual(after.stdoutText, "")
    }

    func clientKilledTwiceAnotherClientForces() throws {
        try check(["new", "alpha", "--name", "relay"], home: firstHome)
        let run = try spawnTether(["invoke", "--name", "relay", "--", Self.slowLoop], home: firstHome, label: "relay-invoke")
        try waitUntil("output began") { lineNumbers(run.stdoutText).count >= 5 }
        try run.kill9()
        let part1 = lineNumbers(run.stdoutText)
        XCTAssertEqual(part1, Array(1...part1.count))

        // The same client receives, and is killed again mid-way.
        let reader = try spawnTether(["receive", "--name", "relay"], home: firstHome, label: "relay-receive")
        try waitUntil("the receive went past the first part") { (lineNumbers(reader.stdoutText).last ?? 0) >= part1.count + 5 }
        try reader.kill9()
        let part2 = lineNumbers(reader.stdoutText)
        let start2 = try XCTUnwrap(part2.first)
        XCTAssertEqual(part2, Array(start2...(part2.last ?? start2)))
        XCTAssertLessThanOrEqual(start2, part1.count + 1)
        XCTAssertLessThan(part2.last ?? 40, 40, "killed mid-command")

        // Another machine: refused (the dead client still holds it), then --force.
        let refused = try tether(["connect", "--computer", "alpha", "--name", "relay"], home: secondHome)
        XCTAssertEqual(refused.status, .exited(1), refused.stderrText)
        let forced = try tether(["connect", "--computer", "alpha", "--name", "relay", "--force"], home: secondHome)
        XCTAssertEqual(forced.status, .exited(0), forced.stderrText)
        XCTAssertTrue(forced.stderrText.contains("took over"), forced.stderrText)

        let rest = try tether(["receive", "--name", "relay"], home: secondHome)
        XCTAssertEqual(rest.status, .exited(0), rest.stderrText)
        let part3 = lineNumbers(rest.stdoutText)
        let start3 = try XCTUnwrap(part3.first, "receive printed \(rest.stdoutText)")
        XCTAssertEqual(part3, Array(start3...40), "every remaining line exactly once, in order")
        XCTAssertLessThanOrEqual(start3, (part2.last ?? 0) + 1, "nothing lost across two kills and a takeover")
    }

    /// The CLI has taken output from the connection but cannot print it (its stdout
    /// is stuck) when it is killed: that output was never shown, so it must not count as
    /// received — the next receive prints it.
    func clientKilledWhileItsStdoutIsStuck() throws {
        try check(["new", "alpha", "--name", "stuck"], home: firstHome)
        let filler = String(repeating: "x", count: 4095)  // + newline: one full pipe page
        let script = "echo \"$1\"; sleep 1; echo 'the line after the filler'; sleep 2; echo 'the last line'"
        let run = try spawnTetherWithStuckStdout(["invoke", "--name", "stuck", "--", script, filler],
                                                 home: firstHome, label: "stuck")
        try waitUntil("the CLI is blocked printing the second line") { run.isBlockedWritingStdout }
        try run.kill9()
        XCTAssertEqual(run.readStuckOutput(), filler + "\n", "what reached stdout before the kill")

        let rest = try tether(["receive", "--name", "stuck"], home: firstHome)
        XCTAssertEqual(rest.status, .exited(0), rest.stderrText)
        let tail = "the line after the filler\nthe last line\n"
        // The filler may be repeated (it was printed but perhaps not yet acknowledged);
        // the line the CLI could not print must not be missing.
        XCTAssertTrue(rest.stdoutText == tail || rest.stdoutText == filler + "\n" + tail,
                      "receive printed \(rest.stdoutText.count) bytes: \(rest.stdoutText.suffix(200))")
    }
}
