import XCTest
import Foundation
import Glibc
import TetherClient
import TetherIO
import TetherTestSupport

/// Automatic resume after a cut link: `tether invoke` and `tether receive` follow a
/// command through a real `TCPProxy` in front of the host's sshd; the proxy resets the
/// connection (RST) mid-command and refuses new ones for about a second. The CLI must
/// reconnect on its own, print every line exactly once and in order, and exit with the
/// command's status. Through the keeper (the CLI's default); `ResumeDirectTests` runs the
/// same without it.
class ResumeTestCase: TwoClientTestCase {
    /// 40 lines in about 2 seconds, then status 7.
    static let loop = "for i in $(seq 1 40); do echo \"line $i\"; sleep 0.05; done; (exit 7)"
    static let allLines = (1...40).map { "line \($0)\n" }.joined()

    var proxy: TCPProxy!

    override func setUpWithError() throws {
        try super.setUpWithError()
        proxy = try TCPProxy(targetPort: alpha.port)
        // "alpha" now means: through the proxy. The host key is still checked strictly,
        // against alpha's own keys recorded for the proxy's port.
        let knownHosts = String(decoding: Descriptors.readFile(alpha.knownHostsPath) ?? [], as: UTF8.self)
            .replacingOccurrences(of: "]:\(alpha.port) ", with: "]:\(proxy.port) ")
        let knownHostsPath = workDirectory + "/known_hosts_proxy"
        try writeFile(knownHostsPath, knownHosts)
        let config = alpha.configuration.sshConfig
            .replacingOccurrences(of: "Port \(alpha.port)\n", with: "Port \(proxy.port)\n")
            .replacingOccurrences(of: "UserKnownHostsFile \(alpha.knownHostsPath)", with: "UserKnownHostsFile \(knownHostsPath)")
        try writeFile(sshConfigPath, config)
    }

    override func tearDown() {
        if let run = testRun, !run.hasSucceeded { print("---- proxy: \(proxy.map { "\($0.statistics)" } ?? "-")") }
        proxy?.stop()
        proxy = nil
        super.tearDown()
    }

    /// Resets every connection through the proxy and refuses new ones for `seconds`.
    func cutLink(for seconds: Double) throws {
        try proxy.setRefuseNew(true)
        proxy.cut()
        usleep(UInt32(seconds * 1e6))
        try proxy.setRefuseNew(false)
    }

    func waitForLine(_ process: TetherProcess, _ number: Int) throws {
        try waitUntil("line \(number) printed") { process.stdoutText.contains("line \(number)\n") }
    }

    func assertResumed(_ process: TetherProcess, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try process.wait(timeout: 60), .exited(7), process.stderrText, file: file, line: line)
        XCTAssertEqual(process.stdoutText, Self.allLines, "every line once, in order", file: file, line: line)
        let stderr = process.stderrText
        XCTAssertTrue(stderr.contains("tether: alpha: connection lost ("), stderr, file: file, line: line)
        XCTAssertTrue(stderr.contains("reconnecting…\n"), stderr, file: file, line: line)
        XCTAssertTrue(stderr.contains("tether: alpha: reconnected\n"), stderr, file: file, line: line)
        XCTAssertGreaterThanOrEqual(proxy.statistics.cut, 1, "the link was really cut", file: file, line: line)
        XCTAssertTrue(alpha.hostLog.contains("connected through the gateway"),
                      "the new link went straight to the gateway, without a login shell", file: file, line: line)
    }

    // MARK: invoke

    func invokeInAnExistingSessionResumes() throws {
        try check(["new", "alpha", "--name", "s"])
        let run = try spawnTether(["invoke", "--name", "s", "--", Self.loop], home: firstHome, label: "invoke")
        try waitForLine(run, 10)
        try cutLink(for: 1)
        try assertResumed(run)
        // The session is as it was: the loop's variable is there.
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "echo \"$i\""]), "40\n")
    }

    func invokeInATemporarySessionResumes() throws {
        let run = try spawnTether(["invoke", "--computer", "alpha", "--", Self.loop], home: firstHome, label: "temporary")
        try waitForLine(run, 10)
        try cutLink(for: 1)
        try assertResumed(run)
        XCTAssertEqual(try getJSON(["--computer", "alpha"]).count, 0, "the temporary session was removed")
    }

    func invokeGivesUpAtTheDeadline() throws {
        try check(["new", "alpha", "--name", "s"])
        let run = try spawnTether(["invoke", "--name", "s", "--reconnect-timeout", "1", "--", Self.loop],
                                  home: firstHome, label: "deadline")
        try waitForLine(run, 10)
        try proxy.setRefuseNew(true)
        proxy.cut()
        let lost = Date()
        XCTAssertEqual(try run.wait(timeout: 30), .exited(255), run.stderrText)
        XCTAssertLessThan(Date().timeIntervalSince(lost), 10, "it gave up near the deadline")
        let stderr = run.stderrText
        XCTAssertTrue(stderr.contains("reconnecting…"), stderr)
        XCTAssertTrue(stderr.contains("could not reconnect within 1 s"), stderr)
        XCTAssertTrue(stderr.contains("tether receive"), stderr)
        XCTAssertFalse(stderr.contains("reconnected\n"), stderr)
        try proxy.setRefuseNew(false)

        let rest = try tether(["receive", "--name", "s"], timeout: 30)
        XCTAssertEqual(rest.status, .exited(7), rest.stderrText)
        assertNothingLost(printed: run.stdoutText, received: rest.stdoutText)
    }

    func reconnectTimeoutZeroExitsAt255() throws {
        try check(["new", "alpha", "--name", "s"])
        let run = try spawnTether(["invoke", "--name", "s", "--reconnect-timeout", "0", "--", Self.loop],
                                  home: firstHome, label: "zero")
        try waitForLine(run, 10)
        proxy.cut()
        XCTAssertEqual(try run.wait(timeout: 20), .exited(255), run.stderrText)
        let stderr = run.stderrText
        XCTAssertTrue(stderr.hasPrefix("tether: alpha: "), stderr)
        XCTAssertTrue(stderr.contains("tether receive"), stderr)
        XCTAssertFalse(stderr.contains("reconnecting"), stderr)

        let rest = try tether(["receive", "--name", "s"], timeout: 30)
        XCTAssertEqual(rest.status, .exited(7), rest.stderrText)
        assertNothingLost(printed: run.stdoutText, received: rest.stdoutText)
    }

    func ctrlCWhileReconnecting() throws {
        try check(["new", "alpha", "--name", "s"])
        let run = try spawnTether(["invoke", "--name", "s", "--", Self.loop], home: firstHome, label: "ctrlc")
        try waitForLine(run, 10)
        try proxy.setRefuseNew(true)
        proxy.cut()
        try waitUntil("reconnecting") { run.stderrText.contains("reconnecting…") }
        XCTAssertEqual(kill(run.pid, SIGINT), 0)
        XCTAssertEqual(try run.wait(timeout: 10), .exited(130), run.stderrText)
        XCTAssertTrue(run.stderrText.contains("tether receive"), run.stderrText)
        try proxy.setRefuseNew(false)
        let rest = try tether(["receive", "--name", "s"], timeout: 30)
        XCTAssertEqual(rest.status, .exited(7), rest.stderrText)
        assertNothingLost(printed: run.stdoutText, received: rest.stdoutText)
    }

    // MARK: receive

    func receiveResumes() throws {
        let started = try tether(["invoke", "--computer", "alpha", "--session-name", "bg",
                                  "--in-disconnected-session", "--", Self.loop])
        XCTAssertEqual(started.status, .exited(0), started.stderrText)
        let run = try spawnTether(["receive", "--computer", "alpha", "--name", "bg"], home: firstHome, label: "receive")
        try waitForLine(run, 10)
        try cutLink(for: 1)
        try assertResumed(run)
        // Everything was acknowledged: nothing is left to receive.
        let again = try tether(["receive", "--name", "bg"])
        XCTAssertEqual(again.stdoutText, "", again.stderrText)
    }

    // MARK: Helpers

    /// `printed` then `received` cover every line in order; the overlap (lines printed
    /// but not yet acknowledged when the link went) may repeat, nothing may be missing.
    func assertNothingLost(printed: String, received: String, file: StaticString = #filePath, line: UInt = #line) {
        let first = lineNumbers(printed)
        let second = lineNumbers(received)
        XCTAssertEqual(first, Array((1...40).prefix(first.count)), "the first part is in order", file: file, line: line)
        guard let start = second.first else {
            XCTAssertEqual(first, Array(1...40), "nothing was left to receive", file: file, line: line)
            return
        }
        XCTAssertEqual(second, Array(start...40), "receive continues in order to the end", file: file, line: line)
        XCTAssertLessThanOrEqual(start, first.count + 1, "nothing lost between the two", file: file, line: line)
    }

    // MARK: stdin, several sessions

    func stdinIsClosedAtTheResume() throws {
        try check(["new", "alpha", "--name", "s"])
        let script = "while read -r l; do echo \"got $l\"; done; echo 'stdin ended'; " + Self.loop
        let input = try Descriptors.pipe()
        defer { close(input.write) }
        let run = try spawnTether(["invoke", "--name", "s", "--", script], home: firstHome, label: "stdin", stdinFD: input.read)
        close(input.read)
        _ = "a\n".withCString { write(input.write, $0, 2) }
        try waitUntil("the command read stdin") { run.stdoutText.contains("got a\n") }
        try cutLink(for: 1)
        // The pipe stays open: only the resume can end the command's input — so the
        // command's own status (7) can't be trusted, and tether says so with 255.
        XCTAssertEqual(try run.wait(timeout: 60), .exited(255), run.stderrText)
        XCTAssertTrue(run.stderrText.contains("the command exited with 7, but its stdin was cut"), run.stderrText)
        XCTAssertEqual(run.stdoutText, "got a\nstdin ended\n" + Self.allLines)
        XCTAssertTrue(run.stderrText.contains("tether: alpha: stdin could not be resumed"), run.stderrText)
        XCTAssertTrue(run.stderrText.contains("reconnected"), run.stderrText)
    }

    func severalSessionsResumeEachOnItsOwn() throws {
        try check(["new", "alpha", "--name", "s1"])
        try check(["new", "alpha", "--name", "s2"])
        try check(["invoke", "--name", "s1", "--", "tag=one"])
        try check(["invoke", "--name", "s2", "--", "tag=two"])
        let script = "for i in $(seq 1 40); do echo \"$tag $i\"; sleep 0.05; done; (exit 7)"
        let run = try spawnTether(["invoke", "--name", "s*", "--hide-computer-name", "--", script],
                                  home: firstHome, label: "several")
        try waitUntil("both printed") { run.stdoutText.contains("one 10\n") && run.stdoutText.contains("two 10\n") }
        try cutLink(for: 1)
        XCTAssertEqual(try run.wait(timeout: 60), .exited(7), run.stderrText)
        let lines = run.stdoutText.split(separator: "\n")
        for tag in ["one", "two"] {
            let numbers = lines.filter { $0.hasPrefix(tag + " ") }.compactMap { Int($0.dropFirst(tag.count + 1)) }
            XCTAssertEqual(numbers, Array(1...40), "\(tag): every line once, in order")
        }
        XCTAssertEqual(run.stderrText.components(separatedBy: "reconnected\n").count - 1, 2, run.stderrText)
    }
}

/// Through the keeper (the CLI's default): the keeper's link is what the proxy cuts.
final class ResumeTests: ResumeTestCase {
    /// The library, with the loop docs/library.md shows: only public API, a direct
    /// connection; the resume point is the delivered seq, and the status the command's.
    func testLibraryResumesAnInvocationWithTheDocumentedLoop() async throws {
        let client = try TetherClient(home: ClientHome(directory: tetherHome))
        let options = ConnectionOptions(configFile: sshConfigPath)
        var host = try await client.connect("alpha", options: options)
        let session = try await host.createSession(name: "lib")
        let run = try await session.invoke(Self.loop)
        let proxy = self.proxy!
        var output = run.output
        var resumed: Reception?
        var printed: [UInt8] = []
        var cut = false
        while true {
            do {
                for try await chunk in output {
                    if case .stdout(let bytes) = chunk { printed += bytes }
                    if !cut && String(decoding: printed, as: UTF8.self).contains("line 10\n") {
                        cut = true
                        try proxy.setRefuseNew(true)
                        proxy.cut()
                        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { try? proxy.setRefuseNew(false) }
                    }
                }
                break
            } catch let error as TetherClientError where error.isConnectionLost {
                let point = resumed?.resumePoint ?? run.resumePoint
                XCTAssertEqual(point.commandID, run.commandID)
                XCTAssertGreaterThanOrEqual(point.deliveredSeq, run.lastDeliveredSeq)
                XCTAssertFalse(point.stdinInterrupted)
                host = try await Self.reconnect(host)
                let again = try await host.session(instanceID: point.instanceID).resume(from: point)
                resumed = again
                output = again.output
            }
        }
        let status: Int32? = if let resumed { try await resumed.exitStatus } else { try await run.exitStatus }
        XCTAssertNotNil(resumed, "the link was cut mid-command")
        XCTAssertEqual(status, 7)
        XCTAssertEqual(String(decoding: printed, as: UTF8.self), Self.allLines)
        try await host.remove(instanceID: session.instanceID)
        await host.close()
    }

    /// `reconnect()` until the link is back (what the CLI's loop does, minus the deadline).
    static func reconnect(_ host: RemoteHost) async throws -> RemoteHost {
        let deadline = Date().addingTimeInterval(20)
        while true {
            do {
                return try await host.reconnect()
            } catch let error as TetherClientError where error.kind == .connection && Date() < deadline {
                try await Task.sleep(nanoseconds: 50_000_000)
            }
        }
    }

    func testInvokeInAnExistingSessionResumesAfterTheLinkIsBack() throws { try invokeInAnExistingSessionResumes() }
    func testInvokeInATemporarySessionResumesAndRemovesItAfterwards() throws { try invokeInATemporarySessionResumes() }
    func testInvokeGivesUpAtTheDeadlineAndReceiveCollectsTheRest() throws { try invokeGivesUpAtTheDeadline() }
    func testReconnectTimeoutZeroExitsAt255AsBefore() throws { try reconnectTimeoutZeroExitsAt255() }
    func testCtrlCWhileReconnectingStopsWaitingWith130() throws { try ctrlCWhileReconnecting() }
    func testReceiveResumesAfterTheLinkIsBack() throws { try receiveResumes() }
    func testForwardedStdinIsClosedAtTheResumeAndSaidSo() throws { try stdinIsClosedAtTheResume() }
    func testSeveralSessionsResumeEachOnItsOwn() throws { try severalSessionsResumeEachOnItsOwn() }
}

/// The same with the CLI connecting directly (TETHER_KEEPER=0): the CLI's own SSH
/// connection is what the proxy cuts.
final class ResumeDirectTests: ResumeTestCase {
    override class var viaKeeper: Bool { false }

    func testInvokeInAnExistingSessionResumesAfterTheLinkIsBack() throws { try invokeInAnExistingSessionResumes() }
    func testInvokeGivesUpAtTheDeadlineAndReceiveCollectsTheRest() throws { try invokeGivesUpAtTheDeadline() }
    func testReceiveResumesAfterTheLinkIsBack() throws { try receiveResumes() }
    func testForwardedStdinIsClosedAtTheResumeAndSaidSo() throws { try stdinIsClosedAtTheResume() }
}
