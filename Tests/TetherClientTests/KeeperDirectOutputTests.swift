import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// The keeper writes a one-session invoke's (or receive's) stdout straight into the CLI's
/// stdout, passed to it by SCM_RIGHTS (`DescriptorSink`): the bytes skip the CLI. The
/// promises hold unchanged: every byte arrives once and in order, a reader that stops
/// stops the output (and the keeper's loop never waits on it), a failed write ends the
/// CLI exactly as its own failed write did and leaves the rest on the host, a killed
/// CLI's descriptor is let go at once, and stdout and stderr sharing one file keep their
/// order (the CLI then writes both itself).
final class KeeperDirectOutputTests: CLITestCase {
    /// Runs a bash script with `$T` = the tether binary, `$W` = this test's directory.
    func shell(_ script: String, timeout: Double = 120) throws -> CommandResult {
        var environment = Spawn.currentEnvironment().filter {
            !$0.hasPrefix("TETHER_HOME=") && !$0.hasPrefix("TETHER_SSH_CONFIG=") && !$0.hasPrefix("TETHER_TRANSPORT=")
        }
        environment += ["TETHER_HOME=\(tetherHome)", "TETHER_SSH_CONFIG=\(sshConfigPath)", "T=\(tetherPath)",
                        "W=\(workDirectory)"]
        if let transport = Environment.get("TETHER_TEST_TRANSPORT") { environment.append("TETHER_TRANSPORT=\(transport)") }
        return try Processes.run("/bin/bash", ["-c", script], environment: environment, timeout: timeout)
    }

    /// What `seq 1 <last>` prints.
    static func seqOutput(through last: Int) -> [UInt8] {
        Array((1...last).map { "\($0)\n" }.joined().utf8)
    }

    /// The keeper's pid (`tether keeper --status`).
    func keeperPID() throws -> Int32 {
        let status = try check(["keeper", "--status"])
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any])
        return Int32(try XCTUnwrap(parsed["pid"] as? Int))
    }

    /// Where the keeper's open descriptors point.
    func keeperDescriptorTargets(_ pid: Int32) -> [String] {
        let directory = "/proc/\(pid)/fd"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\($0)") }
    }

    func testTheKeeperWritesIntoTheCLIsStdoutAndLetsGoBeforeTheCLIEnds() throws {
        try check(["new", "alpha", "--name", "s"])
        let run = try startTether(["invoke", "--name", "s", "--", "echo started; sleep 2; echo done"], label: "held")
        try eventually(timeout: 30, "the command's first line") { run.stdoutText == "started\n" }
        let keeper = try keeperPID()
        XCTAssertTrue(keeperDescriptorTargets(keeper).contains(run.stdoutPath),
                      "the keeper holds the CLI's stdout while the command runs: \(keeperDescriptorTargets(keeper))")
        XCTAssertEqual(try run.wait(timeout: 60), .exited(0), run.stderrText)
        XCTAssertEqual(run.stdoutText, "started\ndone\n")
        // Closed before the CLI was told the command ended, so before the CLI exited.
        XCTAssertFalse(keeperDescriptorTargets(keeper).contains(run.stdoutPath),
                       "the keeper still holds the CLI's stdout after the CLI ended")
    }

    func testLargeBinaryOutputThroughAPipeArrivesByteForByte() throws {
        try check(["new", "alpha", "--name", "bin"])
        // 24 MB of every byte value, more than the host's window: the pipe to `cat` fills
        // and the keeper waits for room many times.
        let result = try shell("""
            head -c 24000000 /dev/urandom > "$W/data"
            "$T" invoke --name bin -- "cat '$W/data'" | cat > "$W/copy"
            echo "status=${PIPESTATUS[0]}"
            cmp "$W/data" "$W/copy" && echo same
            """)
        XCTAssertEqual(result.stdoutText, "status=0\nsame\n", result.stderrText)
    }

    func testHeadThenReceiveGetsExactlyTheRest() throws {
        try check(["new", "alpha", "--name", "cut"])
        let piped = try shell("\"$T\" invoke --name cut -- 'seq 1 300000' | head -c 10; echo \"status=${PIPESTATUS[0]}\" >&2")
        XCTAssertEqual(piped.stdoutText, "1\n2\n3\n4\n5\n")
        // As before: the CLI stops quietly by SIGPIPE, like any tool whose reader left.
        XCTAssertEqual(piped.stderrText, "status=141\n")
        let rest = Array(try check(["receive", "--name", "cut"]).utf8)
        let whole = Self.seqOutput(through: 300_000)
        XCTAssertFalse(rest.isEmpty, "everything after head's bytes was acknowledged")
        XCTAssertTrue(whole.suffix(rest.count).elementsEqual(rest), "receive got \(rest.count) bytes that are not the end of the output")
        // Only what went into the pipe was acknowledged: a pipe's worth at most.
        XCTAssertLessThanOrEqual(whole.count - rest.count, 1 << 20)
    }

    func testAFullDeviceEndsTheCLIAsBeforeAndLosesNothing() throws {
        try check(["new", "alpha", "--name", "full"])
        let full = try shell("\"$T\" invoke --name full -- 'seq 1 100000' > /dev/full")
        XCTAssertEqual(full.status, .exited(1), full.stderrText)
        XCTAssertTrue(full.stderrText.contains("cannot write to standard output: No space left on device"), full.stderrText)
        XCTAssertEqual(Array(try check(["receive", "--name", "full"]).utf8), Self.seqOutput(through: 100_000))
    }

    func testAStoppedReaderHoldsTheOutputBackAndGetsAllOfItWhenResumed() throws {
        try check(["new", "alpha", "--name", "slow"])
        // ~15 MB: twice the host's window. The reader stops before reading a byte.
        let result = try shell("""
            set -o pipefail
            "$T" invoke --name slow -- 'seq 1 2000000' | { echo $BASHPID > "$W/reader.pid"; kill -STOP $BASHPID; exec cat > "$W/out"; } &
            pipeline=$!
            sleep 3
            "$T" get --name slow > /dev/null && echo "keeper answers meanwhile"
            pipe=$(readlink /proc/$(cat "$W/reader.pid")/fd/0)
            keeper=$("$T" keeper --status | grep -o '"pid" *: *[0-9]*' | grep -o '[0-9]*$')
            ls -l /proc/$keeper/fd | grep -qF "$pipe" && echo "the keeper writes into the pipe"
            kill -CONT "$(cat "$W/reader.pid")"
            wait $pipeline; echo "status=$?"
            """)
        XCTAssertEqual(result.stdoutText, "keeper answers meanwhile\nthe keeper writes into the pipe\nstatus=0\n",
                       result.stderrText)
        let out = Descriptors.readFile(workDirectory + "/out") ?? []
        XCTAssertEqual(out.count, Self.seqOutput(through: 2_000_000).count)
        XCTAssertTrue(out.elementsEqual(Self.seqOutput(through: 2_000_000)), "the output arrived altered")
    }

    func testAKilledCLIsDescriptorIsLetGoAndReceiveGetsTheRest() throws {
        try check(["new", "alpha", "--name", "killed"])
        // The reader stops, so the CLI is mid-stream when it is killed; once resumed, the
        // reader must see EOF: nobody may hold the pipe's write end any more.
        let result = try shell("""
            mkfifo "$W/fifo"
            { echo $BASHPID > "$W/reader.pid"; kill -STOP $BASHPID; exec cat > "$W/out"; } < "$W/fifo" &
            reader=$!
            "$T" invoke --name killed -- 'seq 1 1200000' > "$W/fifo" &
            cli=$!
            sleep 3
            kill -9 $cli
            wait $cli 2>/dev/null
            kill -CONT "$(cat "$W/reader.pid")"
            for i in $(seq 1 300); do kill -0 $reader 2>/dev/null || break; sleep 0.1; done
            kill -0 $reader 2>/dev/null && { echo "the reader never saw EOF"; kill $reader; }
            echo finished
            """)
        XCTAssertEqual(result.stdoutText, "finished\n", result.stderrText)
        let whole = Self.seqOutput(through: 1_200_000)
        let out = Descriptors.readFile(workDirectory + "/out") ?? []
        XCTAssertTrue(whole.prefix(out.count).elementsEqual(out), "the reader got something other than the output's start")
        let rest = Array(try check(["receive", "--name", "killed"]).utf8)
        XCTAssertTrue(whole.suffix(rest.count).elementsEqual(rest), "receive got \(rest.count) bytes that are not the end of the output")
        // Nothing lost: what the reader got and what receive got cover the whole output.
        XCTAssertGreaterThanOrEqual(out.count + rest.count, whole.count,
                                    "\(whole.count - out.count - rest.count) bytes reached nobody")
    }

    func testStdoutAndStderrInOneFileKeepTheirOrderAndStayWithTheCLI() throws {
        try check(["new", "alpha", "--name", "both"])
        // Their relative order is the order the CLI writes records in, so the keeper must
        // not write one of them behind the CLI's back: it holds no descriptor here.
        let result = try shell("""
            "$T" invoke --name both -- 'for i in $(seq 1 300); do echo out$i; echo err$i >&2; done; sleep 2; echo last' > "$W/both" 2>&1 &
            cli=$!
            for i in $(seq 1 300); do grep -q err300 "$W/both" && break; sleep 0.1; done
            pid=$("$T" keeper --status | grep -o '"pid" *: *[0-9]*' | grep -o '[0-9]*$')
            ls -l /proc/$pid/fd | grep -q "$W/both" && echo "the keeper holds the shared file" || echo "keeper: not held"
            wait $cli; echo "status=$?"
            """)
        XCTAssertEqual(result.stdoutText, "keeper: not held\nstatus=0\n", result.stderrText)
        let lines = String(decoding: Descriptors.readFile(workDirectory + "/both") ?? [], as: UTF8.self)
            .split(separator: "\n").map(String.init)
        // Each stream's lines in order, none lost or doubled, in one file.
        XCTAssertEqual(lines.filter { $0.hasPrefix("out") }, (1...300).map { "out\($0)" })
        XCTAssertEqual(lines.filter { $0.hasPrefix("err") }, (1...300).map { "err\($0)" })
        XCTAssertEqual(lines.last, "last")
        XCTAssertEqual(lines.count, 601)
    }
}
