import XCTest
@testable import TetherCLI

/// PowerShell's cmdlet syntax rewritten into native argv, without sshd.
final class CmdletTranslationTests: XCTestCase {
    func translate(_ arguments: [String]) throws -> [String] {
        try CmdletTranslation.translate(arguments)
    }

    func failure(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let result = try translate(arguments)
            XCTFail("expected a failure, got \(result)", file: file, line: line)
            return ""
        } catch {
            return "\(error)"
        }
    }

    func testNativeVerbsPassUntouched() throws {
        XCTAssertEqual(try translate(["get", "--name", "a"]), ["get", "--name", "a"])
        XCTAssertEqual(try translate([]), [])
    }

    func testCmdletNamesAreCaseInsensitiveAliases() throws {
        XCTAssertEqual(try translate(["get-pssession"]), ["get"])
        XCTAssertEqual(try translate(["GET-PSSESSION"]), ["get"])
        XCTAssertEqual(try translate(["Get-Job"]), ["job", "get"])
        XCTAssertEqual(try translate(["Receive-Job", "-Keep", "-Wait"]), ["job", "receive", "--keep", "--wait"])
        XCTAssertEqual(try translate(["Get-PSSessionConfiguration", "-ComputerName", "web1"]),
                       ["configurations", "--computer", "web1"])
        XCTAssertEqual(Set(Cmdlet.all.map(\.name)), [
            "New-PSSession", "Get-PSSession", "Invoke-Command", "Enter-PSSession", "Disconnect-PSSession",
            "Connect-PSSession", "Receive-PSSession", "Remove-PSSession", "Get-Job", "Receive-Job", "Wait-Job",
            "Stop-Job", "Remove-Job", "Get-PSSessionConfiguration", "Import-PSSession", "Export-PSSession"])
    }

    func testImplicitRemotingCmdletsBecomeImportAndExport() throws {
        XCTAssertEqual(try translate(["Import-PSSession", "-Session", "deploy", "-CommandName", "app*,ll", "-Prefix", "r_",
                                      "-AllowClobber"]),
                       ["import", "--name", "deploy", "--command", "app*,ll", "--prefix", "r_", "--allow-clobber"])
        XCTAssertEqual(try translate(["import-pssession", "deploy", "-commandn", "ls", "-AllowClobber:$false"]),
                       ["import", "--name", "deploy", "--command", "ls"])
        XCTAssertEqual(try translate(["Export-PSSession", "deploy", "-OutputModule", "d.bash", "-CommandName", "*", "-Force"]),
                       ["export", "--name", "deploy", "--output", "d.bash", "--command", "*", "--force"])
        XCTAssertTrue(failure(["Export-PSSession", "-Session", "s", "-Encoding", "utf8"])
            .contains("-Encoding has no tether equivalent: the file is UTF-8"))
        XCTAssertTrue(failure(["Import-PSSession", "-Session", "s", "-CommandType", "Function"])
            .contains("-CommandType has no tether equivalent"))
    }

    func testParametersAreCaseInsensitiveAndTakeUnambiguousPrefixes() throws {
        XCTAssertEqual(try translate(["Get-PSSession", "-comp", "web1", "-NAME", "a*,b", "-st", "Disconnected"]),
                       ["get", "--computer", "web1", "--name", "a*,b", "--state", "disconnected"])
        XCTAssertEqual(try translate(["Remove-PSSession", "-Id", "1..3"]), ["remove", "--id", "1..3"])
        XCTAssertEqual(try translate(["Remove-PSSession", "-inst", "0B7C"]), ["remove", "--instance-id", "0B7C"])
        // An exact name wins over the longer names it prefixes.
        XCTAssertEqual(try translate(["Invoke-Command", "-Session", "s", "-sc", "{ true }"]),
                       ["invoke", "--name", "s", "--", "true"])
        XCTAssertEqual(try translate(["Get-PSSession", "-Name:x"]), ["get", "--name", "x"])
    }

    func testAmbiguousAndUnknownParametersFailNamingCandidates() {
        let ambiguous = failure(["Get-PSSession", "-c", "web1"])
        XCTAssertTrue(ambiguous.contains("-c is ambiguous") && ambiguous.contains("-ComputerName")
                      && ambiguous.contains("-ConfigurationName"), ambiguous)
        let unknown = failure(["Get-PSSession", "-Bogus"])
        XCTAssertTrue(unknown.contains("no parameter -Bogus") && unknown.contains("-ComputerName"), unknown)
        let missing = failure(["Get-PSSession", "-Name"])
        XCTAssertTrue(missing.contains("-Name needs a value"), missing)
        // A value without a parameter name is PowerShell's position 0.
        XCTAssertEqual(try? translate(["Remove-Job", "3"]), ["job", "remove", "--job-id", "3"])
        XCTAssertEqual(try? translate(["Remove-PSSession", "s"]), ["remove", "--name", "s"])
    }

    func testParametersWithoutANativeEquivalentAreRefusedByName() {
        let credential = failure(["New-PSSession", "web1", "-Credential", "me"])
        XCTAssertTrue(credential.contains("-Credential has no tether equivalent"), credential)
        let throttle = failure(["Get-PSSession", "-ThrottleLimit", "4"])
        XCTAssertTrue(throttle.contains("-ThrottleLimit has no tether equivalent"), throttle)
        let configuration = failure(["Enter-PSSession", "web1", "-ConfigurationName", "ops"])
        XCTAssertTrue(configuration.contains("-ConfigurationName has no tether equivalent"), configuration)
    }

    func testSwitchesTakeDollarTrueAndDollarFalse() throws {
        XCTAssertEqual(try translate(["Remove-PSSession", "-Name", "a", "-Force:$false"]), ["remove", "--name", "a"])
        XCTAssertEqual(try translate(["Remove-PSSession", "-Name", "a", "-Force:$true"]), ["remove", "--name", "a", "--force"])
        let expanded = failure(["Remove-PSSession", "-Force:"])
        XCTAssertTrue(expanded.contains("needs $true or $false"), expanded)
        let wrong = failure(["Remove-PSSession", "-Force:maybe"])
        XCTAssertTrue(wrong.contains("is a switch"), wrong)
    }

    func testNewPSSessionComputersArePositional() throws {
        XCTAssertEqual(try translate(["New-PSSession", "-ComputerName", "web1,web2", "-Name", "s", "-IdleTimeoutSec", "600",
                                      "-OutputBufferingMode", "Drop", "-ConfigurationName", "ops"]),
                       ["new", "web1,web2", "--name", "s", "--idle-timeout", "600", "--output-buffering", "drop",
                        "--configuration", "ops"])
        XCTAssertEqual(try translate(["New-PSSession", "web1", "-UserName", "u", "-KeyFilePath", "k", "-Port", "2222",
                                      "-Subsystem", "t"]),
                       ["new", "web1", "--user", "u", "--identity", "k", "--port", "2222", "--subsystem", "t"])
    }

    func testInvokeCommandScriptBlockArgumentListAndFilePath() throws {
        XCTAssertEqual(try translate(["Invoke-Command", "-ComputerName", "a,b", "-ScriptBlock", "{ echo \"$1\" }",
                                      "-ArgumentList", "x,y", "-ThrottleLimit", "2", "-HideComputerName"]),
                       ["invoke", "--computer", "a,b", "--throttle-limit", "2", "--hide-computer-name",
                        "--", "echo \"$1\"", "x", "y"])
        XCTAssertEqual(try translate(["Invoke-Command", "-ComputerName", "db", "-InDisconnectedSession", "-SessionName", "n",
                                      "-FilePath", "./b.sh", "-ArgumentList", "--dry-run"]),
                       ["invoke", "--computer", "db", "--in-disconnected-session", "--session-name", "n",
                        "--file", "./b.sh", "--", "--dry-run"])
        XCTAssertEqual(try translate(["Invoke-Command", "-Session", "s", "-AsJob", "-JobName", "build", "{ make }"]),
                       ["invoke", "--name", "s", "--as-job", "--job-name", "build", "--", "make"])
        // Native options and a native script after -- still work.
        XCTAssertEqual(try translate(["Invoke-Command", "-Session", "s", "--json", "--", "echo", "hi"]),
                       ["invoke", "--name", "s", "--json", "--", "echo", "hi"])
        let both = failure(["Invoke-Command", "-Session", "s", "-ScriptBlock", "{ a }", "--", "b"])
        XCTAssertTrue(both.contains("not both"), both)
    }

    func testJobCmdletsSelectJobsAndSessions() throws {
        XCTAssertEqual(try translate(["Get-Job", "-Session", "s", "-State", "Running", "-Name", "b*"]),
                       ["job", "get", "--name", "s", "--state", "Running", "--job-name", "b*"])
        XCTAssertEqual(try translate(["Wait-Job", "-Id", "1..2", "-Any", "-Timeout", "5"]),
                       ["job", "wait", "--job-id", "1..2", "--any", "--timeout", "5"])
        XCTAssertEqual(try translate(["Stop-Job", "-InstanceId", "u"]), ["job", "stop", "--job-instance-id", "u"])
        XCTAssertEqual(try translate(["Remove-Job", "-Id", "2", "-Force"]), ["job", "remove", "--job-id", "2", "--force"])
    }

    func testScriptBlockBracesAreStripped() {
        XCTAssertEqual(Cmdlet.scriptBody("{ ls -l }"), "ls -l")
        XCTAssertEqual(Cmdlet.scriptBody("  {\n echo {a,b}\n}  "), "echo {a,b}")
        XCTAssertEqual(Cmdlet.scriptBody("echo plain"), "echo plain")
    }

    func testHelpPowerShellListsEveryCmdlet() {
        XCTAssertTrue(PowerShellHelp.isRequest(["help", "PowerShell"]))
        for cmdlet in Cmdlet.all {
            XCTAssertTrue(PowerShellHelp.text.contains("\(cmdlet.name)  →  tether \(cmdlet.verb.joined(separator: " "))"))
        }
    }
}
