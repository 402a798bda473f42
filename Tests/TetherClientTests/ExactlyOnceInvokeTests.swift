import XCTest
import Foundation
import Glibc
import CTetherPosix
import TetherIO
import TetherTestSupport

/// Issue 11 item 18: an invoke whose connection drops between the request leaving and
/// its `started` answer arriving runs exactly once. The CLI retries with the same token
/// on a new connection; the runspace either rejoins the command the lost request started
/// or starts it now. Through the real TCP proxy in front of sshd, with the keeper.
final class ExactlyOnceInvokeTests: ResumeTestCase {
    /// Appends one line to `$1`, prints once on each stream, exits 5.
    static let command = "echo ran >> \"$1\"; echo out; echo err >&2; (exit 5)"

    func testInvokeWhoseStartedAnswerIsLostRunsOnceAndIsRejoined() throws {
        let ranLog = workDirectory + "/ran.log"
        let trigger = workDirectory + "/trigger"
        // A command that keeps the session busy until the trigger exists: the invoke below
        // attaches, then waits in the runspace's queue with its answer still to come.
        try check(["invoke", "--computer", "alpha", "--session-name", "s", "--in-disconnected-session",
                   "--", "while [ ! -e \"$1\" ]; do sleep 0.05; done", trigger])
        let before = proxy.statistics.bytesFromTarget
        let run = try spawnTether(["invoke", "--name", "s", "--", Self.command, ranLog], home: firstHome, label: "held")
        // The attach answer came back; from now on the host's answers stay in the proxy.
        try waitUntil("the invoke attached") { proxy.statistics.bytesFromTarget > before }
        proxy.holdReplies()
        try writeFile(trigger, "")
        try waitUntil("the command ran on the host") { !(Descriptors.readFile(ranLog) ?? []).isEmpty }
        proxy.cut()  // `started`, the output and the end are lost with the link

        XCTAssertEqual(try run.wait(timeout: 60), .exited(5), run.stderrText)
        assertRanOnce(run, ranLog: ranLog)
    }

    func testInvokeLostBeforeReachingTheHostRunsOnce() throws {
        let ranLog = workDirectory + "/ran.log"
        try check(["new", "alpha", "--name", "s"])
        proxy.stall()  // the request leaves the client and goes nowhere
        let run = try spawnTether(["invoke", "--name", "s", "--", Self.command, ranLog], home: firstHome, label: "lost")
        // The keeper relays the CLI's attach (a channel of its link) once the CLI is past
        // opening its connection: from there on a lost link is a lost request, which the
        // CLI retries. (Cut earlier — a slow CLI still opening — the open itself fails,
        // exit 255: another case, not this test's.)
        try waitUntil("the CLI's request went into the link") { try run.stderrText.isEmpty && keeperChannels() >= 1 }
        usleep(300_000)
        XCTAssertTrue((Descriptors.readFile(ranLog) ?? []).isEmpty, "nothing ran yet")
        proxy.cut()
        proxy.resume()

        XCTAssertEqual(try run.wait(timeout: 60), .exited(5), run.stderrText)
        // (Under load the request may not have left before the cut: either way, once.)
        assertRanOnce(run, ranLog: ranLog, reconnected: false)
    }

    /// The link goes down while the CLI is still opening its connection through the keeper
    /// — after the keeper's `opened` answer, before the CLI's hello — and stays down for a
    /// while. Nothing of the command was sent: the CLI opens a connection again (it used to
    /// exit 255) and the command runs once. The window is held open for real, no timing:
    /// the keeper pings a quiet link before putting a CLI on it
    /// (TETHER_KEEPER_CHECK_AFTER=0: every link is quiet), the stalled link holds the
    /// ping, the CLI is stopped (SIGSTOP) once the ping is in the link, the link resumes
    /// so the keeper's `opened` lands in the stopped CLI's socket, and only then is the
    /// link cut, new connections refused, and the CLI continued.
    func testLinkLostWhileTheCLIIsStillOpeningIsOpenedAgainAndRunsOnce() throws {
        setenv("TETHER_KEEPER_CHECK_AFTER", "0", 1)  // inherited by the keeper `new` starts
        defer { unsetenv("TETHER_KEEPER_CHECK_AFTER") }
        let ranLog = workDirectory + "/ran.log"
        try check(["new", "alpha", "--name", "s"])
        proxy.stall()
        let held = bytesHeldInProxy()
        let run = try spawnTether(["invoke", "--name", "s", "--", Self.command, ranLog], home: firstHome, label: "opening")
        try waitUntil("the keeper pinged the stalled link for the CLI's open") { bytesHeldInProxy() > held }
        XCTAssertEqual(kill(run.pid, SIGSTOP), 0)
        var stopped = true
        defer { if stopped { kill(run.pid, SIGCONT) } }
        let sockets = try socketCopies(of: run.pid)
        defer { sockets.forEach { close($0) } }
        XCTAssertFalse(sockets.isEmpty, "the CLI holds its keeper socket")
        proxy.resume()
        try waitUntil("the keeper's answer waits in the stopped CLI's socket") {
            sockets.contains { Descriptors.waitReadable($0, until: Deadline(secondsFromNow: 0)) }
        }
        try proxy.setRefuseNew(true)
        proxy.cut()
        XCTAssertEqual(kill(run.pid, SIGCONT), 0)
        stopped = false
        try waitUntil("the CLI reconnects or gives up") { run.stderrText.contains("reconnecting…") || Self.hasEnded(run.pid) }
        try proxy.setRefuseNew(false)

        XCTAssertEqual(try run.wait(timeout: 60), .exited(5), run.stderrText)
        XCTAssertTrue(run.stderrText.contains("tether: alpha: connection lost while opening it ("), run.stderrText)
        assertRanOnce(run, ranLog: ranLog)
    }

    /// Bytes the stalled proxy holds unread from its clients (the keeper's link): the
    /// receive queues of its accepted sockets, from /proc/net/tcp.
    private func bytesHeldInProxy() -> Int {
        let text = String(decoding: Descriptors.readFile("/proc/net/tcp") ?? [], as: UTF8.self)
        let port = String(format: ":%04X", Int(proxy.port))
        return text.split(separator: "\n").dropFirst().reduce(0) { sum, line in
            let fields = line.split(separator: " ")
            // local_address rem_address st tx_queue:rx_queue …; 01: established.
            guard fields.count > 4, fields[1].hasSuffix(port), fields[3] == "01",
                  let queued = fields[4].split(separator: ":").last.flatMap({ Int($0, radix: 16) }) else { return sum }
            return sum + queued
        }
    }

    /// Copies (pidfd_getfd) of every socket `pid` holds, to see what waits in them.
    private func socketCopies(of pid: pid_t) throws -> [Int32] {
        let pidfd = tether_pidfd_open(pid)
        guard pidfd >= 0 else { throw SystemError.last("pidfd_open \(pid)") }
        defer { close(pidfd) }
        let directory = "/proc/\(pid)/fd"
        return try FileManager.default.contentsOfDirectory(atPath: directory).compactMap { name in
            guard let fd = Int32(name),
                  let target = try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + name),
                  target.hasPrefix("socket:") else { return nil }
            let copy = tether_pidfd_getfd(pidfd, fd)
            guard copy >= 0 else { throw SystemError.last("pidfd_getfd \(pid) \(fd)") }
            return copy
        }
    }

    /// Exited (a zombie not yet reaped) or gone.
    private static func hasEnded(_ pid: pid_t) -> Bool {
        let stat = String(decoding: Descriptors.readFile("/proc/\(pid)/stat") ?? [], as: UTF8.self)
        guard let state = stat.split(separator: ")").last?.split(separator: " ").first else { return true }
        return state == "Z" || state == "X"
    }

    /// Channels the keeper relays now, over all its links (`tether keeper --status`).
    private func keeperChannels() throws -> Int {
        let result = try tether(["keeper", "--status"], home: firstHome)
        guard result.status == .exited(0),
              let status = try JSONSerialization.jsonObject(with: Data(result.stdoutText.utf8)) as? [String: Any],
              let links = status["links"] as? [[String: Any]] else { return 0 }
        return links.compactMap { $0["channels"] as? Int }.reduce(0, +)
    }

    private func assertRanOnce(_ run: TetherProcess, ranLog: String, reconnected: Bool = true,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(String(decoding: Descriptors.readFile(ranLog) ?? [], as: UTF8.self), "ran\n",
                       "the command ran exactly once", file: file, line: line)
        XCTAssertEqual(run.stdoutText, "out\n", "its output shown once", file: file, line: line)
        let stderr = run.stderrText
        XCTAssertEqual(stderr.components(separatedBy: "err\n").count - 1, 1, stderr, file: file, line: line)
        guard reconnected else { return }
        XCTAssertTrue(stderr.contains("reconnecting…"), stderr, file: file, line: line)
        XCTAssertTrue(stderr.contains("tether: alpha: reconnected\n"), stderr, file: file, line: line)
        XCTAssertGreaterThanOrEqual(proxy.statistics.cut, 1, "the link was really cut", file: file, line: line)
    }
}
