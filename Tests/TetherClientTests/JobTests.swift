import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// Jobs end to end: `tether invoke --as-job` and `tether job …` through the real sshd,
/// from two client homes (two "machines").
final class JobTests: TwoClientTestCase {
    /// `tether job get --json` (plus `extra`), parsed.
    func jobsJSON(_ extra: [String] = [], home: String? = nil) throws -> [[String: Any]] {
        let text = try check(["job", "get", "--json"] + extra, home: home)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]], text)
    }

    func testAJobSeesTheSessionAsItWasAndItsChangesStayItsOwn() throws {
        try check(["new", "alpha", "--name", "work"])
        try check(["invoke", "--name", "work", "--", "x=before; greet() { echo \"hi $1\"; }; alias say=echo; cd /tmp; export E=exported"])
        // bash is idle: the job is a fork of it.
        let table = try check(["invoke", "--name", "work", "--as-job", "--job-name", "first", "--",
                               "echo \"x=$x E=$E $(pwd)\"; greet job; say aliased; x=changed; cd /; echo \"$1\"", "arg one"])
        XCTAssertTrue(table.contains("first"), table)
        XCTAssertEqual(try check(["job", "receive", "--name", "work", "--job-name", "first", "--wait"]),
                       "x=before E=exported /tmp\nhi job\naliased\narg one\n")
        XCTAssertEqual(try check(["invoke", "--name", "work", "--", "echo \"$x $(pwd)\""]), "before /tmp\n",
                       "the job's assignment and cd did not leak back")
        let jobs = try jobsJSON(["--name", "work"])
        XCTAssertEqual(jobs.count, 1)
        XCTAssertEqual(jobs.first?["state"] as? String, "Completed")
        XCTAssertEqual(jobs.first?["exitStatus"] as? Int, 0)
        XCTAssertEqual(jobs.first?["shellCopy"] as? String, "fork")
        XCTAssertEqual(jobs.first?["hasMoreData"] as? Bool, false)
    }

    func testAsJobReturnsWhileAForegroundCommandRunsBesideIt() throws {
        try check(["new", "alpha", "--name", "busy"])
        let release = workDirectory + "/release"
        try check(["invoke", "--name", "busy", "--as-job", "--", "true"])  // the session has used jobs
        try check(["invoke", "--name", "busy", "--", "x=set-before"])
        // The foreground command ends only once the job (started after it) has run.
        let foreground = try startTether(["invoke", "--name", "busy", "--",
            "echo started; while [ ! -e \(release) ]; do sleep 0.02; done; echo foreground-done"], label: "foreground")
        try eventually("the foreground command started") { foreground.stdoutText == "started\n" }
        let started = try tether(["invoke", "--name", "busy", "--as-job", "--job-name", "beside", "--",
                                  "echo \"x=$x\"; x=job; touch \(release)"])
        XCTAssertEqual(started.status, .exited(0), started.stderrText)
        XCTAssertEqual(try foreground.wait(), .exited(0), foreground.stderrText)
        XCTAssertEqual(foreground.stdoutText, "started\nforeground-done\n")
        XCTAssertEqual(try check(["job", "receive", "--name", "busy", "--job-name", "beside", "--wait"]), "x=set-before\n")
        XCTAssertEqual(try jobsJSON(["--name", "busy", "--job-name", "beside"]).first?["shellCopy"] as? String, "snapshot")
        XCTAssertEqual(try check(["invoke", "--name", "busy", "--", "echo $x"]), "set-before\n")
    }

    func testBashsOwnJobsAreUntouchedByTetherJobs() throws {
        try check(["new", "alpha", "--name", "own"])
        try check(["invoke", "--name", "own", "--", "sleep 600 &"])
        try check(["invoke", "--name", "own", "--as-job", "--", "sleep 600"])
        XCTAssertEqual(try check(["invoke", "--name", "own", "--", "jobs | wc -l; kill %1; wait %1; echo \"$?\""]), "1\n143\n",
                       "bash's job table holds its own job only")
        XCTAssertEqual(try jobsJSON(["--name", "own"]).first?["state"] as? String, "Running")
    }

    func testAJobAfterACommandsExitAndItsOwnExit() throws {
        try check(["new", "alpha", "--name", "ex"])
        XCTAssertEqual(try tether(["invoke", "--name", "ex", "--", "exit 5"]).status, .exited(5))
        try check(["invoke", "--name", "ex", "--as-job", "--", "echo forked; exit 4"])
        let received = try tether(["job", "receive", "--name", "ex", "--job-id", "1", "--wait"])
        XCTAssertEqual(received.stdoutText, "forked\n")
        XCTAssertEqual(received.status, .exited(4), "the job's own exit ends the job, not the session")
        XCTAssertEqual(try check(["invoke", "--name", "ex", "--", "echo still"]), "still\n")
    }

    func testReceiveGivesOutputOnceAndKeepKeepsIt() throws {
        try check(["new", "alpha", "--name", "r"])
        try check(["invoke", "--name", "r", "--as-job", "--", "echo out; echo err >&2"])
        let waited = try tether(["job", "wait", "--name", "r", "--job-id", "1"])
        XCTAssertEqual(waited.status, .exited(0), waited.stderrText)
        XCTAssertEqual(try jobsJSON(["--name", "r"]).first?["hasMoreData"] as? Bool, true)
        let kept = try tether(["job", "receive", "--name", "r", "--job-id", "1", "--keep"])
        XCTAssertEqual(kept.stdoutText, "out\n")
        XCTAssertEqual(kept.stderrText, "err\n")
        let first = try tether(["job", "receive", "--name", "r", "--job-id", "1"])
        XCTAssertEqual(first.stdoutText, "out\n", "--keep left it unread")
        XCTAssertEqual(first.stderrText, "err\n")
        let second = try tether(["job", "receive", "--name", "r", "--job-id", "1"])
        XCTAssertEqual(second.status, .exited(0), second.stderrText)
        XCTAssertEqual(second.stdoutText + second.stderrText, "", "received once")
        XCTAssertEqual(try jobsJSON(["--name", "r"]).first?["hasMoreData"] as? Bool, false)
    }

    func testWaitReturnsWithTheJobAndReceiveWaitExitsWithItsStatus() throws {
        try check(["new", "alpha", "--name", "w"])
        let gate = workDirectory + "/gate"
        try check(["invoke", "--name", "w", "--as-job", "--", "while [ ! -e \(gate) ]; do sleep 0.02; done; echo late; exit 3"])
        let timedOut = try tether(["job", "wait", "--name", "w", "--timeout", "0.2"])
        XCTAssertEqual(timedOut.status, .exited(124), "the job still runs: " + timedOut.stderrText)
        let waiter = try startTether(["job", "wait", "--name", "w", "--job-id", "1"], label: "wait")
        try writeFile(gate, "")
        XCTAssertEqual(try waiter.wait(), .exited(0), waiter.stderrText)
        XCTAssertTrue(waiter.stdoutText.contains("Failed"), waiter.stdoutText)
        let received = try tether(["job", "receive", "--name", "w", "--job-id", "1", "--wait"])
        XCTAssertEqual(received.status, .exited(3))
        XCTAssertEqual(received.stdoutText, "late\n")
    }

    func testStopEndsTheJobsWholeProcessGroup() throws {
        try check(["new", "alpha", "--name", "s"])
        // The background sleep ignores SIGINT (an asynchronous command without job
        // control): only the SIGTERM that follows ends it.
        try check(["invoke", "--name", "s", "--as-job", "--job-name", "sleeper", "--", "trap '' INT; sleep 600 & sleep 600; wait"])
        var pid = 0
        try eventually("the job runs with a pid") {
            pid = ((try? jobsJSON(["--name", "s"]))?.first?["pid"] as? Int) ?? 0
            return pid > 0
        }
        try eventually("both sleeps are in the job's group") {
            ProcessTable.snapshot().filter { getpgid($0.pid) == pid_t(pid) }.count >= 3
        }
        let stopped = try tether(["job", "stop", "--name", "s", "--job-name", "sleeper"])
        XCTAssertEqual(stopped.status, .exited(0), stopped.stderrText)
        XCTAssertTrue(stopped.stdoutText.contains("Stopped"), stopped.stdoutText)
        XCTAssertEqual(kill(-pid_t(pid), 0), -1, "nothing of the job's group is left")
        XCTAssertEqual(errno, ESRCH)
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "echo alive"]), "alive\n", "the session goes on")
    }

    func testRemoveRefusesARunningJobWithoutForceAndClearErrors() throws {
        try check(["new", "alpha", "--name", "rm"])
        try check(["invoke", "--name", "rm", "--as-job", "--", "sleep 600"])
        let refused = try tether(["job", "remove", "--name", "rm", "--job-id", "1"])
        XCTAssertEqual(refused.status, .exited(1))
        XCTAssertTrue(refused.stderrText.contains("--force"), refused.stderrText)
        XCTAssertEqual(try jobsJSON(["--name", "rm"]).count, 1)
        let unknown = try tether(["job", "receive", "--name", "rm", "--job-id", "7"])
        XCTAssertEqual(unknown.status, .exited(1))
        XCTAssertTrue(unknown.stderrText.contains("no job matches"), unknown.stderrText)
        try check(["job", "remove", "--name", "rm", "--job-id", "1", "--force"])
        XCTAssertEqual(try jobsJSON(["--name", "rm"]).count, 0)
    }

    func testJobLimitIsEnforced() throws {
        try check(["new", "alpha", "--name", "lim", "--job-limit", "1"])
        try check(["invoke", "--name", "lim", "--as-job", "--", "sleep 600"])
        let second = try tether(["invoke", "--name", "lim", "--as-job", "--", "true"])
        XCTAssertEqual(second.status, .exited(1))
        XCTAssertTrue(second.stderrText.contains("limit"), second.stderrText)
    }

    func testASecondClientListsAndReceivesTheJob() throws {
        try check(["new", "alpha", "--name", "shared"], home: firstHome)
        try check(["invoke", "--name", "shared", "--as-job", "--job-name", "report", "--", "echo from-the-job"], home: firstHome)
        let listed = try check(["job", "get", "--computer", "alpha"], home: secondHome)
        XCTAssertTrue(listed.contains("report") && listed.contains("shared"), listed)
        XCTAssertEqual(try check(["job", "receive", "--computer", "alpha", "--job-name", "report", "--wait"], home: secondHome),
                       "from-the-job\n")
        XCTAssertEqual(try check(["job", "receive", "--name", "shared", "--job-name", "report"], home: firstHome), "",
                       "the other machine received it")
    }

    func testRegistryKilledDuringAJobLosesNothing() throws {
        try check(["new", "alpha", "--name", "k"])
        let gate = workDirectory + "/go"
        try check(["invoke", "--name", "k", "--as-job", "--", "echo one; while [ ! -e \(gate) ]; do sleep 0.02; done; echo two"])
        let registry = try XCTUnwrap(alpha.registryPID())
        try Processes.kill9(registry)
        try Processes.waitForExit(registry)
        try writeFile(gate, "")
        XCTAssertEqual(try check(["job", "receive", "--name", "k", "--job-id", "1", "--wait"]), "one\ntwo\n")
        XCTAssertNotEqual(alpha.registryPID(), registry)
    }

    func testRemovingTheSessionEndsItsJobs() throws {
        try check(["new", "alpha", "--name", "gone"])
        try check(["invoke", "--name", "gone", "--as-job", "--", "sleep 600"])
        var pid = 0
        try eventually("the job runs") {
            pid = ((try? jobsJSON(["--name", "gone"]))?.first?["pid"] as? Int) ?? 0
            return pid > 0
        }
        try check(["remove", "--name", "gone"])
        try eventually("the job's group is gone") { kill(-pid_t(pid), 0) == -1 && errno == ESRCH }
    }

    func testAJobInABrokenSessionIsAClearError() throws {
        try check(["new", "alpha", "--name", "broken"])
        let runspace = try XCTUnwrap(alpha.runspacePIDs().first)
        try Processes.kill9(runspace)
        try Processes.waitForExit(runspace)
        try eventually("the registry marks it broken") {
            ((try? getJSON(["--computer", "alpha", "--name", "broken"]))?.first?["state"] as? String) == "Broken"
        }
        let refused = try tether(["invoke", "--name", "broken", "--as-job", "--", "true"])
        XCTAssertEqual(refused.status, .exited(1))
        XCTAssertTrue(refused.stderrText.contains("broken"), refused.stderrText)
    }
}

/// Jobs whose output nobody reads: 50 MB in `block` and in `drop` mode.
final class JobBufferingTests: CLITestCase {
    static let total = 50_000_000
    static let writer = "head -c \(total) /dev/zero"

    func jobState(_ name: String) throws -> String? {
        let text = try check(["job", "get", "--json", "--name", name])
        let jobs = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]
        return jobs?.first?["state"] as? String
    }

    func testBlockModeHoldsTheJobUntilItsOutputIsReceived() throws {
        try check(["new", "alpha", "--name", "blocked", "--buffer-limit", "1048576"])
        try check(["invoke", "--name", "blocked", "--as-job", "--", Self.writer])
        try eventually(timeout: 60, "the job waits for a reader") { (try? self.jobState("blocked")) == "Blocked" }
        let received = try tether(["job", "receive", "--name", "blocked", "--job-id", "1", "--wait"], timeout: 300)
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        XCTAssertEqual(received.stdout.count, Self.total, "every byte, once")
        XCTAssertEqual(try jobState("blocked"), "Completed")
    }

    func testDropModeLetsTheJobFinishAndSaysWhatWasDropped() throws {
        try check(["new", "alpha", "--name", "dropping", "--output-buffering", "drop", "--buffer-limit", "1048576"])
        try check(["invoke", "--name", "dropping", "--as-job", "--", Self.writer])
        let waited = try tether(["job", "wait", "--name", "dropping", "--job-id", "1"], timeout: 300)
        XCTAssertEqual(waited.status, .exited(0), waited.stderrText)
        XCTAssertTrue(waited.stdoutText.contains("Completed"), waited.stdoutText)
        let received = try tether(["job", "receive", "--name", "dropping", "--job-id", "1"], timeout: 120)
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        XCTAssertLessThanOrEqual(received.stdout.count, 1_048_576, "no more than the buffer limit was kept")
        let notice = received.stderrText
        let dropped = try XCTUnwrap(notice.split(separator: " ").dropFirst(2).first.flatMap { Int($0) },
                                    "a dropped notice: \(notice)")
        XCTAssertEqual(dropped + received.stdout.count, Self.total, notice)
    }
}

/// `--as-job` fanned out over two computers, with temporary sessions.
final class JobFanOutTests: CLITestCase {
    override var computerCount: Int { 2 }

    func testAsJobOverTwoComputersAndRemoveTakesTheTemporarySessions() throws {
        let table = try check(["invoke", "--computer", "alpha,beta", "--as-job", "--job-name", "hello", "--",
                               "echo \"hello from $1\"", "both"])
        XCTAssertTrue(table.contains("alpha") && table.contains("beta"), table)
        let received = try check(["job", "receive", "--job-name", "hello", "--wait"])
        XCTAssertEqual(Set(received.split(separator: "\n")), ["[alpha:hello] hello from both", "[beta:hello] hello from both"])
        try check(["job", "remove", "--state", "Completed"])
        XCTAssertEqual(try getJSON(["--computer", "alpha,beta"]).count, 0, "the temporary sessions went with their jobs")
    }
}
