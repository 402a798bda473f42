import XCTest
import Foundation
import TetherTestSupport

/// The PSSession documents' examples (about_PSSessions, about_PSSession_Details), typed
/// as PowerShell users type them with only `tether` in front and bash quoting, through
/// the real sshd on two computers.
final class PowerShellCmdletTests: CLITestCase {
    override var computerCount: Int { 2 }

    func testNewGetInvokeRemoveAsInTheDocuments() throws {
        // New-PSSession -ComputerName Server01, Server02
        let table = try check(["New-PSSession", "-ComputerName", "alpha,beta", "-Name", "web"])
        XCTAssertTrue(table.contains("alpha") && table.contains("beta"), table)
        try check(["new-pssession", "alpha", "-name", "db"])
        XCTAssertEqual(try getJSON().count, 3)

        // Get-PSSession -ComputerName Server01
        let onAlpha = try check(["Get-PSSession", "-ComputerName", "alpha", "--json"])
        XCTAssertTrue(onAlpha.contains("\"web\"") && onAlpha.contains("\"db\"") && !onAlpha.contains("\"beta\""), onAlpha)

        // Invoke-Command -Session $s -ScriptBlock { … } (with -ArgumentList)
        let output = try check(["Invoke-Command", "-Session", "db", "-ScriptBlock", "{ echo \"got $1 and $2\" }",
                                "-ArgumentList", "one,two"])
        XCTAssertEqual(output, "got one and two\n")
        let fanned = try check(["invoke-command", "-session", "web", "-hide", "-ScriptBlock", "{ echo hi }"])
        XCTAssertEqual(fanned, "hi\nhi\n")

        // Get-PSSession -Name with wildcards and -State
        try check(["Disconnect-PSSession", "-Name", "db"])
        let disconnected = try check(["Get-PSSession", "-Name", "d*,x*", "-State", "Disconnected", "--json"])
        XCTAssertTrue(disconnected.contains("\"db\"") && !disconnected.contains("\"web\""), disconnected)
        let opened = try check(["Get-PSSession", "-Name", "w?b", "-State", "Opened", "--json"])
        XCTAssertTrue(opened.contains("\"web\"") && !opened.contains("\"db\""), opened)

        // Remove-PSSession -Id 1..2, then by InstanceId
        try check(["Remove-PSSession", "-Id", "1..2"])
        let left = try getJSON()
        XCTAssertEqual(left.compactMap { $0["name"] as? String }, ["db"])
        let instance = try XCTUnwrap(left.first?["instanceId"] as? String)
        try check(["Remove-PSSession", "-ComputerName", "alpha", "-InstanceId", instance.uppercased()])
        XCTAssertEqual(try getJSON(["--computer", "alpha,beta"]).count, 0)
    }

    func testInDisconnectedSessionThenConnectAndReceive() throws {
        // Invoke-Command -ComputerName Server01 -InDisconnectedSession …
        let started = try check(["Invoke-Command", "-ComputerName", "alpha", "-InDisconnectedSession",
                                 "-SessionName", "bg", "-ScriptBlock", "{ echo one; echo two >&2; sh -c 'exit 4' }"])
        XCTAssertTrue(started.contains("bg") && started.contains("Disconnected"), started)
        // Receive-PSSession collects the output and the exit status.
        let received = try tether(["Receive-PSSession", "-ComputerName", "alpha", "-Name", "bg"])
        XCTAssertEqual(received.status, .exited(4), received.stderrText)
        XCTAssertEqual(received.stdoutText, "one\n")
        XCTAssertEqual(received.stderrText, "two\n")
        // Disconnect, then Connect-PSSession takes it back.
        try check(["Disconnect-PSSession", "-Session", "bg"])
        XCTAssertEqual(try getJSON().first?["state"] as? String, "Disconnected")
        let connected = try check(["Connect-PSSession", "-comp", "alpha", "-Name", "bg"])
        XCTAssertTrue(connected.contains("Opened"), connected)
        XCTAssertEqual(try getJSON().first?["state"] as? String, "Opened")
        try check(["Remove-PSSession", "bg"])
    }

    func testBadParametersFailClearlyAndActOnNothing() throws {
        try check(["New-PSSession", "alpha", "-Name", "keep"])
        let ambiguous = try tether(["Remove-PSSession", "-i", "1"])
        XCTAssertEqual(ambiguous.status, .exited(64), ambiguous.stderrText)
        XCTAssertTrue(ambiguous.stderrText.contains("-i is ambiguous: it could be -Id, -InstanceId"), ambiguous.stderrText)
        let unsupported = try tether(["New-PSSession", "beta", "-Credential", "me"])
        XCTAssertEqual(unsupported.status, .exited(64), unsupported.stderrText)
        XCTAssertTrue(unsupported.stderrText.contains("-Credential has no tether equivalent"), unsupported.stderrText)
        XCTAssertEqual(try getJSON().compactMap { $0["name"] as? String }, ["keep"])
        let help = try check(["help", "powershell"])
        XCTAssertTrue(help.contains("Get-PSSession  →  tether get"), help)
    }

    func testJobCmdletsActAsTheJobVerbs() throws {
        try check(["New-PSSession", "alpha", "-Name", "work"])
        // Invoke-Command -AsJob, then Wait-Job, Receive-Job -Keep, Get-Job -State.
        try check(["Invoke-Command", "-Session", "work", "-AsJob", "-JobName", "first", "-ScriptBlock", "{ echo \"$1\" }",
                   "-ArgumentList", "from job"])
        try check(["Wait-Job", "-Session", "work", "-Name", "first", "-Timeout", "60"])
        XCTAssertEqual(try check(["Receive-Job", "-Session", "work", "-Name", "first", "-Keep"]), "from job\n")
        XCTAssertEqual(try check(["receive-job", "-SESSION", "work", "-name", "first"]), "from job\n", "-Keep left it unread")
        let completed = try check(["Get-Job", "-Session", "work", "-State", "Completed", "--json"])
        XCTAssertTrue(completed.contains("\"first\""), completed)
        // Stop-Job a running job, then Remove-Job it.
        try check(["Invoke-Command", "-Session", "work", "-AsJob", "-JobName", "long", "-ScriptBlock", "{ sleep 600 }"])
        try check(["Stop-Job", "-Session", "work", "-Name", "long"])
        let stopped = try check(["Get-Job", "-Session", "work", "-Name", "long", "--json"])
        XCTAssertTrue(stopped.contains("\"Stopped\""), stopped)
        try check(["Remove-Job", "-Session", "work", "-Name", "*"])
        XCTAssertEqual(try check(["Get-Job", "-Session", "work"]).contains("first"), false)
    }
}
