import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// The link itself misbehaving, through a real `TCPProxy` in front of the host's sshd: a
/// long path (one-way delay) and a link that freezes silently (no RST, no FIN). Through
/// the keeper (the CLI's default); the `…DirectTests` subclasses run the same without it.
class LinkTroubleTestCase: TwoClientTestCase {
    var proxy: TCPProxy!
    /// One-way delay the proxy adds, in seconds.
    class var proxyDelay: Double { 0 }
    /// Lines added to alpha's Host block.
    class var extraConfig: [String] { [] }

    override func setUpWithError() throws {
        try super.setUpWithError()
        proxy = try TCPProxy(targetPort: alpha.port, delay: Self.proxyDelay)
        // "alpha" now means: through the proxy, its host key still checked strictly.
        let knownHosts = String(decoding: Descriptors.readFile(alpha.knownHostsPath) ?? [], as: UTF8.self)
            .replacingOccurrences(of: "]:\(alpha.port) ", with: "]:\(proxy.port) ")
        let knownHostsPath = workDirectory + "/known_hosts_proxy"
        try writeFile(knownHostsPath, knownHosts)
        let config = alpha.configuration.sshConfig
            .replacingOccurrences(of: "Port \(alpha.port)\n", with: "Port \(proxy.port)\n")
            .replacingOccurrences(of: "UserKnownHostsFile \(alpha.knownHostsPath)", with: "UserKnownHostsFile \(knownHostsPath)")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try writeFile(sshConfigPath, ([config] + Self.extraConfig.map { "    " + $0 }).joined(separator: "\n") + "\n")
    }

    override func tearDown() {
        if let run = testRun, !run.hasSucceeded { print("---- proxy: \(proxy.map { "\($0.statistics)" } ?? "-")") }
        proxy?.stop()
        proxy = nil
        super.tearDown()
    }

    static func numbers(_ count: Int) -> String {
        var text = ""
        text.reserveCapacity(count * 8)
        for n in 1...count { text += "\(n)\n" }
        return text
    }
}

/// A 30 ms path each way.
class LongPathTestCase: LinkTroubleTestCase {
    override class var proxyDelay: Double { 0.03 }

    /// Start-and-leave used to deadlock on a noisy command: the CLI stopped reading after
    /// ~4 MiB of output nobody would take, and the detach's answer was stuck behind it. It
    /// returns at once now whatever the command prints, and `receive` later gets every
    /// byte (the journal kept what the window held back, the command blocked meanwhile).
    func startAndLeaveReturnsPromptlyAndReceiveGetsEveryByte() throws {
        let count = 6_000_000  // 47 MB of numbered lines
        let started = try tether(["invoke", "--computer", "alpha", "--in-disconnected-session",
                                  "--session-name", "noisy", "--", "seq 1 \(count)"], timeout: 60)
        XCTAssertEqual(started.status, .exited(0), started.stderrText)
        XCTAssertTrue(started.stdoutText.contains("noisy"), started.stdoutText)
        XCTAssertTrue(started.stdoutText.contains("Disconnected"), started.stdoutText)

        let received = try tether(["receive", "--name", "noisy"], timeout: 180)
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        XCTAssertTrue(received.stdoutText == Self.numbers(count),
                      "receive got \(received.stdout.count) bytes, \(received.stdoutText.split(separator: "\n").count) lines")
    }
}

final class LongPathTests: LongPathTestCase {
    func testStartAndLeaveReturnsPromptlyAndReceiveGetsEveryByte() throws { try startAndLeaveReturnsPromptlyAndReceiveGetsEveryByte() }
}

final class LongPathDirectTests: LongPathTestCase {
    override class var viaKeeper: Bool { false }
    func testStartAndLeaveReturnsPromptlyAndReceiveGetsEveryByte() throws { try startAndLeaveReturnsPromptlyAndReceiveGetsEveryByte() }
}

/// ServerAliveInterval 1, ServerAliveCountMax 2: a silent link is lost after ~3 s.
class SilentLinkTestCase: LinkTroubleTestCase {
    override class var extraConfig: [String] { ["ServerAliveInterval 1", "ServerAliveCountMax 2"] }

    static let loop = "for i in $(seq 1 50); do echo \"line $i\"; sleep 0.1; done; (exit 7)"
    static let allLines = (1...50).map { "line \($0)\n" }.joined()

    /// The link freezes mid-command (both directions, sockets open: a NAT box that forgot
    /// the connection). The CLI used to wait forever; now it says the connection was lost
    /// after ServerAliveInterval × (ServerAliveCountMax + 1) of silence, and once the
    /// network is back it resumes and prints every line once.
    func frozenLinkIsNoticedAndTheCommandResumes() throws {
        XCTAssertEqual(try tether(["new", "alpha", "--name", "s"]).status, .exited(0))
        let run = try spawnTether(["invoke", "--name", "s", "--", Self.loop], home: firstHome, label: "invoke")
        try waitUntil("line 5 printed") { run.stdoutText.contains("line 5\n") }
        proxy.stall()
        // 3 s of silence here; far less than the 40 s+ a frozen link used to cost.
        try waitUntil("the CLI says the connection was lost", timeout: 20) {
            run.stderrText.contains("tether: alpha: connection lost (")
        }
        XCTAssertTrue(run.stderrText.contains("no answer from the host"), run.stderrText)
        XCTAssertNil(run.exitStatus, "it waits to resume, it doesn't give up")
        proxy.resume()
        XCTAssertEqual(try run.wait(timeout: 60), .exited(7), run.stderrText)
        XCTAssertEqual(run.stdoutText, Self.allLines, "every line once, in order")
        XCTAssertTrue(run.stderrText.contains("tether: alpha: reconnected\n"), run.stderrText)
    }
}

final class SilentLinkTests: SilentLinkTestCase {
    func testFrozenLinkIsNoticedAndTheCommandResumes() throws { try frozenLinkIsNoticedAndTheCommandResumes() }
}

final class SilentLinkDirectTests: SilentLinkTestCase {
    override class var viaKeeper: Bool { false }
    func testFrozenLinkIsNoticedAndTheCommandResumes() throws { try frozenLinkIsNoticedAndTheCommandResumes() }
}
