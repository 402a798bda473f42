import XCTest
import TetherProtocol

/// The persistent interpreter: what one command sets up, the next one sees.
final class SessionStateTests: RunspaceTestCase {
    func testFunctionsAndVariablesPersistAcrossCommandsAndConnections() throws {
        let client = try runspace.attachedClient()
        let define = try client.run("x=41; f(){ echo $((x+1)); }")
        XCTAssertEqual(define.exitStatus, 0)
        XCTAssertEqual(try client.run("f").stdoutText, "42\n")

        let other = try runspace.attachedClient(clientID: "client-b", channel: 7)
        XCTAssertEqual(try other.run("f", channel: 7).stdoutText, "42\n")
    }

    func testStdoutAndStderrStaySeparateWithTheExitStatus() throws {
        let client = try runspace.attachedClient()
        let result = try client.run("echo out; echo err >&2; echo more; return 3")
        XCTAssertEqual(result.stdoutText, "out\nmore\n")
        XCTAssertEqual(result.stderrText, "err\n")
        XCTAssertEqual(result.exitStatus, 3)
        XCTAssertEqual(result.records.first?.kind, .commandStarted)
        XCTAssertEqual(result.records.last?.kind, .commandEnded)
        let seqs = result.records.map(\.seq)
        XCTAssertEqual(seqs, Array(seqs[0]...(seqs[0] + UInt64(seqs.count) - 1)), "contiguous: \(seqs)")
        XCTAssertEqual(try client.run("false").exitStatus, 1)
    }

    /// Every kind of command — plain (the driver `eval`ed from a readonly variable), with
    /// arguments and with stdin (a driver file) — runs its script at the shell's top
    /// level: `declare` makes globals that persist, `local` is refused as in a script,
    /// and the script is the only file on BASH_SOURCE.
    func testScriptsRunAtTheTopLevelWhateverTheDriver() throws {
        let client = try runspace.attachedClient()
        XCTAssertEqual(try client.run("declare -A plain=([k]=1)").exitStatus, 0)
        XCTAssertEqual(try client.run(#"declare -i withArguments=$1"#, arguments: ["2"]).exitStatus, 0)
        XCTAssertEqual(try client.run("read -r withStdin; declare withStdin", stdin: Array("3\n".utf8)).exitStatus, 0)
        XCTAssertEqual(try client.run(#"echo "${plain[k]} $withArguments $withStdin""#).stdoutText, "1 2 3\n")
        for (arguments, stdin) in [([String](), nil), (["x"], nil), ([], [UInt8]())] as [([String], [UInt8]?)] {
            let local = try client.run("local x=1", arguments: arguments, stdin: stdin)
            XCTAssertEqual(local.exitStatus, 1)
            XCTAssertTrue(local.stderrText.contains("can only be used in a function"), local.stderrText)
            let sources = try client.run(#"echo "${#BASH_SOURCE[@]} ${BASH_SOURCE[0]##*/}""#, arguments: arguments, stdin: stdin)
            XCTAssertEqual(sources.stdoutText, arguments.isEmpty && stdin == nil ? "1 command.sh\n" : "2 command.sh\n")
        }
    }

    func testArgumentsArriveExactly() throws {
        let client = try runspace.attachedClient()
        let arguments = ["a b", "", "$HOME", "c'd", "two\nlines", "*", "-n"]
        let result = try client.run(#"printf '[%s]' "$@"; echo " $#""#, arguments: arguments)
        XCTAssertEqual(result.stdoutText, "[a b][][$HOME][c'd][two\nlines][*][-n] 7\n")
        XCTAssertEqual(try client.run(#"echo "$#""#).stdoutText, "0\n", "no leftover arguments")
        XCTAssertEqual(try client.run("set -- x y; echo $#").stdoutText, "2\n")
        XCTAssertEqual(try client.run(#"echo "$#""#).stdoutText, "0\n")
    }

    func testAliasesCwdAndExportsPersist() throws {
        let client = try runspace.attachedClient()
        XCTAssertEqual(try client.run("alias hi='echo hello from alias'").exitStatus, 0)
        XCTAssertEqual(try client.run("hi").stdoutText, "hello from alias\n")
        let directory = runspace.directory
        XCTAssertEqual(try client.run("cd \(directory) && export TETHER_TEST_VAR=kept").exitStatus, 0)
        XCTAssertEqual(try client.run("pwd; bash -c 'echo $TETHER_TEST_VAR'").stdoutText, "\(directory)\nkept\n")
    }

    func testStartsInHomeAndDriverDescriptorsDoNotLeak() throws {
        let client = try runspace.attachedClient()
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/"
        XCTAssertEqual(try client.run("pwd").stdoutText, home + "\n")
        // A child sees stdin, stdout, stderr and nothing else of the driver's.
        let fds = try client.run("ls /proc/self/fd").stdoutText.split(separator: "\n")
        XCTAssertEqual(fds, ["0", "1", "2", "3"], "ls's own directory fd is the 3")
        XCTAssertEqual(try client.run("echo custom >&3", arguments: []).exitStatus, 1, "fd 3 is closed for commands")
        // A command may take fd 3 for itself; the driver's status pipe comes back afterwards.
        XCTAssertEqual(try client.run("exec 3>/dev/null; echo mine").stdoutText, "mine\n")
        XCTAssertEqual(try client.run("echo after").stdoutText, "after\n")
    }

    func testBackgroundJobSurvivesAcrossCommands() throws {
        let client = try runspace.attachedClient()
        let started = try client.run("sleep 30 & job=$!; echo started")
        XCTAssertEqual(started.stdoutText, "started\n")
        XCTAssertEqual(try client.run("kill -0 $job && echo alive").stdoutText, "alive\n")
        XCTAssertEqual(try client.run("kill $job; wait $job; echo $?").stdoutText, "143\n")
    }

    func testSyntaxErrorFailsTheCommandOnly() throws {
        let client = try runspace.attachedClient()
        let broken = try client.run("echo (")
        XCTAssertEqual(broken.exitStatus, 2)
        XCTAssertTrue(broken.stderrText.contains("syntax error"), broken.stderrText)
        XCTAssertEqual(try client.run("echo fine").stdoutText, "fine\n")
    }

    func testLargeOutputArrivesWhole() throws {
        let client = try runspace.attachedClient()
        let result = try client.run("head -c 5000000 /dev/zero | tr '\\0' x; echo; seq 1 3 >&2")
        XCTAssertEqual(result.stdout.count, 5_000_001)
        XCTAssertTrue(result.stdout.dropLast().allSatisfy { $0 == UInt8(ascii: "x") })
        XCTAssertEqual(result.stderrText, "1\n2\n3\n")
        XCTAssertTrue(result.records.allSatisfy { $0.body.count <= Record.maxDataLength })
    }
}
