import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// Issue 17 item 4: the host's housekeeping (systemd-tmpfiles aging /tmp, an `rm -rf`)
/// removes the registry's socket, then the whole runtime directory, under a running
/// registry with sessions — one of them disconnected with output nobody has read. The
/// registry notices by itself, makes everything again, and every session is reachable
/// with nothing lost: the same registry and runspaces, no restart.
///
/// Every command connects directly (TETHER_KEEPER=0): each is a new subsystem that finds
/// the registry and the runspaces by their socket paths, as any new connection does. (A
/// logind "last logout" test would need logind; the runtime directory is not
/// $XDG_RUNTIME_DIR precisely so that a logout removes nothing.)
final class RuntimeDirectoryTests: CLITestCase {
    override func setUpWithError() throws {
        setenv("TETHER_KEEPER", "0", 1)
        try super.setUpWithError()
    }

    override func tearDown() {
        super.tearDown()
        unsetenv("TETHER_KEEPER")
    }

    private var runtime: String { alpha.runtimeDirectory }
    private var sessionsDirectory: String { runtime + "/sessions" }

    private func isSocket(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    /// The runspaces' socket paths, as the sessions directory shows them now.
    private func runspaceSockets() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: sessionsDirectory)) ?? [])
            .filter { $0.hasSuffix(".sock") }.sorted().map { sessionsDirectory + "/" + $0 }
    }

    /// A warning from the session's shell (the function) and one from a program it starts
    /// (`bin/tether-warning` on PATH) arrive as warning records, a verbose one as verbose:
    /// the stream FIFO and the commands are there — not the `WARNING:` line a shell
    /// outside a session prints on stderr, nor "env: 'tether-warning': No such file".
    private func assertOtherStreamsWork(in session: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let text = try check(["invoke", "--name", session, "--json", "--",
                              "tether-warning from the shell; env tether-warning from a program; tether-verbose details"])
        let object = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])?.first,
                                   text, file: file, line: line)
        let records = try XCTUnwrap(object["records"] as? [[String: Any]], text, file: file, line: line)
        XCTAssertEqual(records.map { $0["stream"] as? String }, ["warning", "warning", "verbose"], text,
                       file: file, line: line)
        XCTAssertEqual(records.map { $0["text"] as? String }, ["from the shell", "from a program", "details"], text,
                       file: file, line: line)
    }

    func testRemovedSocketAndRuntimeDirectoryAreMadeAgainAndNothingIsLost() throws {
        try check(["new", "alpha", "--name", "kept"])
        try assertOtherStreamsWork(in: "kept")
        try check(["invoke", "--name", "kept", "--", "x=state-before-cleanup; cd /tmp"])
        // A disconnected session whose command prints after we looked away: unread output.
        let started = try tether(["invoke", "--computer", "alpha", "--session-name", "away", "--in-disconnected-session",
                                  "--", "echo one; sleep 1; echo two; exit 7"])
        XCTAssertEqual(started.status, .exited(0), started.stderrText)
        let registry = try XCTUnwrap(alpha.registryPID(), "no registry runs")
        let runspaces = alpha.runspacePIDs()
        XCTAssertEqual(runspaces.count, 2)
        let sockets = runspaceSockets()
        XCTAssertEqual(sockets.count, 2, "\(sockets)")

        // 1. Only the registry's socket and one session's socket go.
        XCTAssertEqual(unlink(runtime + "/registry.sock"), 0)
        XCTAssertEqual(unlink(sockets[0]), 0)
        try eventually("registry.sock and the session's socket are back") {
            isSocket(runtime + "/registry.sock") && isSocket(sockets[0])
        }
        XCTAssertEqual(try check(["invoke", "--name", "kept", "--", "echo \"$x\""]), "state-before-cleanup\n")

        // 2. `rm -rf` of the whole directory while the registry runs: it may lose the race
        // (the registry re-binds as entries go, so rmdir can find the directory not
        // empty) — either way everything is there again.
        _ = try Processes.run("/bin/rm", ["-rf", runtime])
        try eventually("the runtime directory and every socket in it are back after a racing rm -rf") {
            isSocket(runtime + "/registry.sock") && isSocket(runtime + "/gateway.sock")
                && sockets.allSatisfy { isSocket($0) }
        }

        // 3. The whole directory really gone before the registry can look (stopped while
        // the cleaner runs): it finds nothing and makes it all again.
        XCTAssertEqual(kill(registry, SIGSTOP), 0)
        let removed = try Processes.run("/bin/rm", ["-rf", runtime])
        XCTAssertEqual(removed.status, .exited(0), removed.stderrText)
        XCTAssertNotEqual(access(runtime, F_OK), 0, "the runtime directory is gone")
        XCTAssertEqual(kill(registry, SIGCONT), 0)
        try eventually("the runtime directory and every socket in it are back") {
            isSocket(runtime + "/registry.sock") && isSocket(runtime + "/gateway.sock")
                && sockets.allSatisfy { isSocket($0) }
        }
        var info = stat()
        XCTAssertEqual(lstat(runtime, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o700, "the directory is made again private")
        XCTAssertEqual(info.st_uid, geteuid())
        let pidFile = String(decoding: Descriptors.readFile(runtime + "/registry.pid") ?? [], as: UTF8.self)
        XCTAssertEqual(pidFile, "\(registry)\n", "the registry holds a fresh pid file (no second registry can start)")

        // Every session is reachable and nothing is lost.
        let listed = try check(["get", "--computer", "alpha"])
        XCTAssertTrue(listed.contains("kept") && listed.contains("away"), listed)
        let received = try tether(["receive", "--computer", "alpha", "--name", "away"])
        XCTAssertEqual(received.stdoutText, "one\ntwo\n", received.stderrText)
        XCTAssertEqual(received.status, .exited(7), "the command's own status: \(received.stderrText)")
        XCTAssertEqual(try check(["invoke", "--name", "away", "--", "echo after"]), "after\n")
        XCTAssertEqual(try check(["invoke", "--name", "kept", "--", "echo \"$x\" $PWD"]), "state-before-cleanup /tmp\n")
        // The session's other streams: their FIFO and `bin/tether-*` went with the work
        // directory. A warning from the shell and one from a program it starts are records
        // again — not the `WARNING:` line a shell outside a session prints on stderr, nor
        // "env: 'tether-warning': No such file or directory".
        try assertOtherStreamsWork(in: "kept")
        // A command with stdin (a FIFO in the session's work directory, which went too).
        XCTAssertEqual(try check(["invoke", "--name", "kept", "--", "wc -c"], stdin: Array("12345".utf8)), "5\n")
        // A job (its script is written into the session's work directory, which went too).
        try check(["invoke", "--name", "kept", "--as-job", "--job-name", "after", "--", "echo \"job $x\""])
        let job = try tether(["job", "receive", "--name", "kept", "--job-name", "after", "--wait"])
        XCTAssertEqual(job.stdoutText, "job state-before-cleanup\n", job.stderrText)
        try check(["disconnect", "--name", "kept"])
        try check(["connect", "--name", "kept"])
        XCTAssertEqual(try check(["invoke", "--name", "kept", "--", "echo \"$x\""]), "state-before-cleanup\n")

        XCTAssertEqual(alpha.registryPID(), registry, "the same registry")
        XCTAssertEqual(alpha.registryPIDs().count, 1)
        XCTAssertEqual(alpha.runspacePIDs(), runspaces, "the same runspaces")
        XCTAssertTrue(alpha.hostLog.contains("re-created \(runtime)/registry.sock"), tail(alpha.hostLog, 20))

        // 4. Only the sessions' work directories go (a cleaner aging them, the sockets
        // left): the next command makes its session's again, streams included.
        let workDirectories = ((try? FileManager.default.contentsOfDirectory(atPath: sessionsDirectory)) ?? [])
            .filter { $0.hasSuffix(".d") }
        XCTAssertEqual(workDirectories.count, 2, "\(workDirectories)")
        for directory in workDirectories {
            let removed = try Processes.run("/bin/rm", ["-rf", sessionsDirectory + "/" + directory])
            XCTAssertEqual(removed.status, .exited(0), removed.stderrText)
        }
        try assertOtherStreamsWork(in: "kept")

        // 5. SIGUSR1 (tmux's "make your socket again") is understood, not fatal.
        for pid in [registry] + runspaces { XCTAssertEqual(kill(pid, SIGUSR1), 0) }
        XCTAssertEqual(try check(["invoke", "--name", "kept", "--", "echo \"$x\""]), "state-before-cleanup\n")
        XCTAssertEqual(alpha.registryPID(), registry)
        XCTAssertEqual(alpha.runspacePIDs(), runspaces)

        try check(["remove", "--name", "kept,away"])
    }
}
