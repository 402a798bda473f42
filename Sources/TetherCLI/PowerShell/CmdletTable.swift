/// Every cmdlet tether accepts, with the native option each of its parameters becomes.
/// This table is the single source of `tether help powershell` too.
extension Cmdlet {
    typealias Parameters = [(name: String, native: NativeParameter)]

    /// How to reach the computer, for every verb that connects.
    static let connection: Parameters = [
        ("UserName", .option("user")),
        ("KeyFilePath", .option("identity")),
        ("Port", .option("port")),
        ("Subsystem", .option("subsystem")),
        ("Credential", .unsupported("tether logs in with ssh keys or ssh-agent; use -UserName and -KeyFilePath")),
        ("SessionOption", .unsupported("give -IdleTimeoutSec and -OutputBufferingMode directly")),
        ("UseSSL", .unsupported("tether always connects over SSH")),
    ]

    /// Which sessions a verb acts on (`-Session NAME` selects by name: there are no
    /// PSSession objects on a command line).
    static let selection: Parameters = [
        ("ComputerName", .option("computer")),
        ("Name", .option("name")),
        ("Session", .option("name")),
        ("Id", .option("id")),
        ("InstanceId", .option("instance-id")),
    ]

    /// Which jobs a job verb acts on, within the sessions -Session/-ComputerName select.
    static let jobSelection: Parameters = [
        ("Id", .option("job-id")),
        ("Name", .option("job-name")),
        ("InstanceId", .option("job-instance-id")),
        ("State", .option("state")),
        ("Session", .option("name")),
        ("ComputerName", .option("computer")),
    ]

    /// Import-PSSession's and Export-PSSession's parameters about PowerShell's own kinds
    /// of commands and modules.
    static let implicitRemotingUnsupported: Parameters = [
        ("CommandType", .unsupported("tether imports the session's functions, aliases and programs; choose them with -CommandName")),
        ("Module", .unsupported("bash has no modules; name the commands with -CommandName")),
        ("FormatTypeName", .unsupported("bash output has no formatting data")),
        ("ArgumentList", .unsupported("the imported functions take their arguments when called")),
    ]

    static let all: [Cmdlet] = [
        Cmdlet(name: "New-PSSession", verb: ["new"], parameters: [
            ("ComputerName", .positional),
            ("HostName", .positional),
            ("Name", .option("name")),
            ("ConfigurationName", .option("configuration")),
            ("IdleTimeoutSec", .option("idle-timeout")),
            ("OutputBufferingMode", .lowercasedOption("output-buffering")),
            ("ThrottleLimit", .unsupported("new connects to every computer at once")),
        ] + connection, positional: "ComputerName"),
        Cmdlet(name: "Get-PSSession", verb: ["get"], parameters: [
            ("ComputerName", .option("computer")),
            ("Name", .option("name")),
            ("Id", .option("id")),
            ("InstanceId", .option("instance-id")),
            ("State", .lowercasedOption("state")),
            ("ConfigurationName", .option("configuration")),
            ("ThrottleLimit", .unsupported("get asks every computer at once")),
        ] + connection, positional: "ComputerName"),
        Cmdlet(name: "Invoke-Command", verb: ["invoke"], parameters: [
            ("ComputerName", .option("computer")),
            ("HostName", .option("computer")),
            ("Session", .option("name")),
            ("ScriptBlock", .scriptBlock),
            ("FilePath", .option("file")),
            ("ArgumentList", .argumentList),
            ("ConfigurationName", .option("configuration")),
            ("ThrottleLimit", .option("throttle-limit")),
            ("HideComputerName", .flag("hide-computer-name")),
            ("InDisconnectedSession", .flag("in-disconnected-session")),
            ("SessionName", .option("session-name")),
            ("IdleTimeoutSec", .option("idle-timeout")),
            ("OutputBufferingMode", .lowercasedOption("output-buffering")),
            ("AsJob", .flag("as-job")),
            ("JobName", .option("job-name")),
            ("Verbose", .flag("verbose")),
        ] + connection, positional: "ScriptBlock"),
        Cmdlet(name: "Enter-PSSession", verb: ["enter"], parameters: [
            ("ComputerName", .positional),
            ("HostName", .positional),
            ("Name", .option("name")),
            ("Session", .option("name")),
            ("Id", .option("id")),
            ("InstanceId", .option("instance-id")),
            ("ConfigurationName", .unsupported("enter HOST starts a default session; create one with New-PSSession -ConfigurationName and enter it by -Name")),
        ] + connection, positional: "ComputerName"),
        Cmdlet(name: "Disconnect-PSSession", verb: ["disconnect"], parameters: selection + [
            ("IdleTimeoutSec", .option("idle-timeout")),
            ("OutputBufferingMode", .lowercasedOption("output-buffering")),
            ("ThrottleLimit", .unsupported("disconnect releases every session at once")),
        ] + connection, positional: "Session"),
        Cmdlet(name: "Connect-PSSession", verb: ["connect"], parameters: selection + [
            ("Force", .flag("force")),
            ("ConfigurationName", .unsupported("select the sessions by -Name, -Id or -InstanceId")),
            ("ThrottleLimit", .unsupported("connect reconnects every session at once")),
        ] + connection, positional: "Session"),
        Cmdlet(name: "Receive-PSSession", verb: ["receive"], parameters: selection + [
            ("HideComputerName", .flag("hide-computer-name")),
            ("ConfigurationName", .unsupported("select the sessions by -Name, -Id or -InstanceId")),
            ("Verbose", .flag("verbose")),
            ("OutTarget", .unsupported("receive prints the output; tether job receive collects jobs")),
            ("JobName", .unsupported("receive prints the output; tether job receive collects jobs")),
        ] + connection, positional: "Session"),
        Cmdlet(name: "Remove-PSSession", verb: ["remove"], parameters: selection + [
            ("Force", .flag("force")),
        ] + connection, positional: "Session"),
        Cmdlet(name: "Import-PSSession", verb: ["import"], parameters: [
            ("Session", .option("name")),
            ("CommandName", .option("command")),
            ("Prefix", .option("prefix")),
            ("AllowClobber", .flag("allow-clobber")),
        ] + implicitRemotingUnsupported + connection, positional: "Session"),
        Cmdlet(name: "Export-PSSession", verb: ["export"], parameters: [
            ("Session", .option("name")),
            ("OutputModule", .option("output")),
            ("CommandName", .option("command")),
            ("Prefix", .option("prefix")),
            ("AllowClobber", .flag("allow-clobber")),
            ("Force", .flag("force")),
            ("Encoding", .unsupported("the file is UTF-8")),
        ] + implicitRemotingUnsupported + connection, positional: "Session"),
        Cmdlet(name: "Get-Job", verb: ["job", "get"], parameters: jobSelection + connection, positional: "Id"),
        Cmdlet(name: "Receive-Job", verb: ["job", "receive"], parameters: jobSelection + [
            ("Keep", .flag("keep")),
            ("Wait", .flag("wait")),
            ("Verbose", .flag("verbose")),
            ("HideComputerName", .flag("hide-computer-name")),
        ] + connection, positional: "Id"),
        Cmdlet(name: "Wait-Job", verb: ["job", "wait"], parameters: jobSelection + [
            ("Any", .flag("any")),
            ("Timeout", .option("timeout")),
        ] + connection, positional: "Id"),
        Cmdlet(name: "Stop-Job", verb: ["job", "stop"], parameters: jobSelection + connection, positional: "Id"),
        Cmdlet(name: "Remove-Job", verb: ["job", "remove"], parameters: jobSelection + [
            ("Force", .flag("force")),
        ] + connection, positional: "Id"),
        Cmdlet(name: "Get-PSSessionConfiguration", verb: ["configurations"], parameters: [
            ("ComputerName", .option("computer")),
            ("Name", .unsupported("configurations lists every configuration of the computers")),
        ] + connection, positional: "ComputerName"),
    ]
}
