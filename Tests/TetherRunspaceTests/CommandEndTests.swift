import XCTest
import TetherProtocol

/// Every way a command can end bash in a plain `bash -c` ends only that command here, with
/// the status `ssh host cmd` would report; the session's state is all still there after.
final class CommandEndTests: RunspaceTestCase {
    private var client: RunspaceClient!

    override func setUpWithError() throws {
        try super.setUpWithError()
        client = try runspace.attachedClient()
        let setup = try client.run("""
            kept=yes; greet() { echo "hello $1"; }; alias hi='echo hi'
            cd /tmp; sleep 60 & job=$!; echo started
            """)
        XCTAssertEqual(setup.stdoutText, "started\n")
    }

    /// The variable, function, alias, cwd and background job the setup left.
    private func assertStateKept(jobTable: Bool = true, file: StaticString = #filePath, line: UInt = #line) throws {
        let check = try client.run("echo $kept; greet you; hi; pwd; kill -0 $job && echo alive")
        XCTAssertEqual(check.stdoutText, "yes\nhello you\nhi\n/tmp\nalive\n", check.stderrText, file: file, line: line)
        XCTAssertEqual(check.exitStatus, 0, file: file, line: line)
        if jobTable {
            XCTAssertEqual(try client.run("jobs -p").stdoutText, "\(try client.run("echo $job").stdoutText)",
                           "bash still knows its job", file: file, line: line)
        }
    }

    func testExitEndsOnlyTheCommand() throws {
        let result = try client.run("echo before; exit 3; echo after")
        XCTAssertEqual(result.stdoutText, "before\n")
        XCTAssertEqual(result.exitStatus, 3)
        try assertStateKept()
        XCTAssertEqual(try client.run("false; exit").exitStatus, 1, "exit without a number: the last status")
        XCTAssertEqual(try client.run("exit -1").exitStatus, 255)
        XCTAssertEqual(try client.run("exit 0; echo no").stdoutText, "")
        XCTAssertEqual(try client.run("(exit 4); echo $?; x=$(exit 5); echo $?").stdoutText, "4\n5\n",
                       "a subshell's exit is the real one")
        try assertStateKept()
    }

    func testExitInANestedFunctionUnwindsEveryCaller() throws {
        let result = try client.run("""
            inner() { echo in; exit 0; echo no-inner; }
            outer() { inner && echo no-and; echo no-outer; }
            outer || echo no-or; echo no-top
            """)
        XCTAssertEqual(result.stdoutText, "in\n", "exit 0 returns through callers that test the status, too")
        XCTAssertEqual(result.exitStatus, 0)
        try assertStateKept()
    }

    func testErrexitEndsOnlyTheCommand() throws {
        let result = try client.run("set -e; f() { false; echo no; }; echo before; f; echo no")
        XCTAssertEqual(result.stdoutText, "before\n")
        XCTAssertEqual(result.exitStatus, 1)
        try assertStateKept()
        XCTAssertEqual(try client.run("echo $-").stdoutText.contains("e"), false, "errexit ends with its command")
        let tested = try client.run("set -e; f() { false; echo tested; }; f || echo no; echo end")
        XCTAssertEqual(tested.stdoutText, "tested\nend\n", "errexit is off in a tested call, as bash has it")
    }

    func testXtraceAndVerboseEndWithTheirCommandWithoutTracingTheNext() throws {
        let traced = try client.run("set -x; echo one")
        XCTAssertEqual(traced.stdoutText, "one\n")
        XCTAssertTrue(traced.stderrText.contains("+ echo one"), traced.stderrText)
        let next = try client.run("echo two")
        XCTAssertEqual(next.stdoutText, "two\n")
        XCTAssertEqual(next.stderrText, "", "the next command's stderr holds no trace of the driver")
        XCTAssertEqual(try client.run("echo $-").stdoutText.contains("x"), false, "xtrace ends with its command")
        _ = try client.run("set -v; echo three")
        let afterVerbose = try client.run("echo four")
        XCTAssertEqual(afterVerbose.stdoutText, "four\n")
        XCTAssertEqual(afterVerbose.stderrText, "", "nor any line bash read for the driver")
        XCTAssertEqual(try client.run("false").exitStatus, 1, "the status still comes through")
        try assertStateKept()
    }

    func testPipefailFailureUnderStrictModeAndPipefailPersists() throws {
        let result = try client.run("set -euo pipefail; false | true; echo no")
        XCTAssertEqual(result.exitStatus, 1)
        XCTAssertEqual(result.stdoutText, "")
        try assertStateKept()
        XCTAssertEqual(try client.run("shopt -po pipefail; case $- in *[eu]*) echo strict;; esac").stdoutText,
                       "set -o pipefail\n", "pipefail persists, errexit and nounset do not")
    }

    func testUnsetVariableUnderNounsetEndsOnlyTheCommand() throws {
        let result = try client.run("set -u; echo before; f() { echo $undefined_here; }; f; echo no")
        XCTAssertEqual(result.stdoutText, "before\n")
        XCTAssertEqual(result.exitStatus, 1)
        XCTAssertTrue(result.stderrText.contains("undefined_here: unbound variable"), result.stderrText)
        try assertStateKept(jobTable: false)
        XCTAssertEqual(try client.run("builtin exit 6").exitStatus, 6, "the builtin too, again and again")
        try assertStateKept(jobTable: false)
        XCTAssertEqual(try client.run("echo ${nothing?not set}").exitStatus, 1)
        try assertStateKept(jobTable: false)
    }

    func testExecProgramEndsOnlyTheCommand() throws {
        let result = try client.run("echo before; exec sh -c 'echo from sh; exit 5'; echo no")
        XCTAssertEqual(result.stdoutText, "before\nfrom sh\n")
        XCTAssertEqual(result.exitStatus, 5)
        try assertStateKept()
    }

    func testExecRedirectionsStillChangeTheSession() throws {
        let log = runspace.directory + "/log"
        XCTAssertEqual(try client.run("exec 4>\(log); echo to-four >&4").exitStatus, 0)
        XCTAssertEqual(try client.run("echo again >&4; f() { exec 4>&-; }; f; echo x >&4").exitStatus, 1,
                       "fd 4 stays open across commands; closing it in a function closes it")
        XCTAssertEqual(try String(contentsOfFile: log, encoding: .utf8), "to-four\nagain\n")
        let redirected = try client.run("exec 5>&1 >\(log) 2>&1; echo to-log; echo err >&2")
        XCTAssertEqual(redirected.stdoutText, "")
        XCTAssertEqual(try client.run("echo also").stdoutText, "", "stdout stays redirected")
        XCTAssertEqual(try client.run("exec >&5 2>&5 5>&-; echo back").stdoutText, "back\n")
        XCTAssertEqual(try String(contentsOfFile: log, encoding: .utf8), "to-log\nerr\nalso\n")
        try assertStateKept()
    }

    func testScriptWithErrexitAndFinalExitZero() throws {
        let script = """
            #!/bin/bash
            set -euo pipefail
            step() { echo "step $1"; }
            step 1
            if [[ ${1-} == fail ]]; then false; fi
            step 2
            exit 0
            """
        let good = try client.run(script)
        XCTAssertEqual(good.stdoutText, "step 1\nstep 2\n")
        XCTAssertEqual(good.exitStatus, 0)
        try assertStateKept()
        let bad = try client.run(script, arguments: ["fail"])
        XCTAssertEqual(bad.stdoutText, "step 1\n")
        XCTAssertEqual(bad.exitStatus, 1)
        try assertStateKept()
    }

    func testKillNineOfBashStillBreaksTheSession() throws {
        let result = try client.run("kill -9 $$")
        XCTAssertEqual(result.exitStatus, 137)
        let broken = try client.nextRecord(channel: 1)
        XCTAssertEqual(broken.kind, .sessionBroken)
        XCTAssertEqual(String(decoding: broken.body, as: UTF8.self), "bash was killed by signal 9 (SIGKILL)")
    }
}
