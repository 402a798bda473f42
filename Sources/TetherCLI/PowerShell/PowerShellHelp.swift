/// `tether help powershell`: the cmdlets tether accepts and what each parameter becomes,
/// printed from the same table the translation uses.
enum PowerShellHelp {
    static func isRequest(_ arguments: [String]) -> Bool {
        arguments.count == 2 && arguments[0] == "help" && arguments[1].lowercased() == "powershell"
    }

    static var text: String {
        var text = """
        PowerShell's cmdlet names work as aliases of tether's verbs, with PowerShell's
        parameter syntax: one dash, any case, unambiguous prefixes (-comp for
        -ComputerName), lists with commas (-Name a,b), Id ranges (-Id 1..3), switches as
        -AsJob or '-AsJob:$false'. -Session NAME selects sessions by name (there are no
        session objects on a command line). -ScriptBlock '{ … }' runs the bash between the
        braces; -ArgumentList a,b becomes its "$@". Native options can be mixed in as
        --option or --option=value (e.g. --json); -? shows the verb's help. A parameter
        tether has no equivalent for is refused, naming it. The native verbs stay the
        documented interface: see tether VERB --help.

        Examples (bash quoting):
          tether New-PSSession -ComputerName web1,web2 -Name deploy
          tether Get-PSSession -ComputerName web1 -Name 'dep*' -State Disconnected
          tether Invoke-Command -Session deploy -ScriptBlock '{ uptime }'
          tether Invoke-Command -comp db1 -InDisconnectedSession -SessionName nightly -FilePath ./backup.sh
          tether Receive-PSSession -ComputerName db1 -Name nightly
          tether Remove-PSSession -Id 1..3
          eval "$(tether Import-PSSession -Session deploy -CommandName 'app*' -Prefix r_)"
          tether Export-PSSession -Session deploy -CommandName 'app*' -OutputModule deploy.bash


        """
        for cmdlet in Cmdlet.all {
            text += "\(cmdlet.name)  →  tether \(cmdlet.verb.joined(separator: " "))\n"
            let width = cmdlet.parameters.map(\.name.count).max() ?? 0
            for parameter in cmdlet.parameters {
                let padding = String(repeating: " ", count: width - parameter.name.count)
                let native: String
                switch parameter.native {
                case .unsupported(let why): native = "(none: \(why))"
                default: native = parameter.native.nativeSpelling
                }
                text += "  -\(parameter.name)\(padding)  \(native)\n"
            }
            text += "\n"
        }
        return text
    }
}
