import ArgumentParser
import TetherClient
import TetherProtocol

struct Configurations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the session configurations you may use on computers.",
        discussion: prose("""
        PowerShell's Get-PSSessionConfiguration. A configuration is the host admin's
        decision about what a session may do: `shell` is a persistent bash (the built-in
        `bash` configuration is the default), `restricted` runs only the command lines
        its rules allow, with no shell. Only the configurations this user may open are
        listed; use one with `tether new --configuration NAME` or `tether invoke --computer
        HOST --configuration NAME`. The admin writes them in /etc/tether/configurations.d
        (see README, "For host admins").

        Examples:
          tether configurations --computer web1
          tether configurations --computer web1,web2 --json
        """))

    @Option(name: .customLong("computer"), help: ArgumentHelp("Computers to ask (comma-separated).", valueName: "HOST"),
            completion: .custom(HostCompletion.complete))
    var computers: [String] = []

    @Flag(help: "Print a JSON array instead of a table, with an error object per failure (schema: docs/json.md).")
    var json = false

    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func validate() throws {
        guard !splitList(computers).isEmpty else { throw ValidationError("name the computers to ask with --computer HOST") }
    }

    func run() async throws {
        try await reportingErrors(json: json) {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(splitList(computers), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let lists: [[ConfigurationRow]] = await concurrentMap(splitList(computers)) { [context] computer in
                do {
                    let host = try await context.pool.host(computer)
                    return try await host.configurations().map { ConfigurationRow(computerName: computer, info: $0) }
                } catch {
                    context.failures.report(error, host: computer)
                    return []
                }
            }
            await context.pool.closeAll()
            let rows = lists.flatMap { $0 }
            if json {
                Terminal.shared.out(ConfigurationRow.json(rows, failures: context.failures.entries))
            } else if !rows.isEmpty {
                Terminal.shared.out(ConfigurationRow.table(rows))
            }
            try context.failures.exitIfFailed()
        }
    }
}

struct ConfigurationRow: Sendable {
    var computerName: String
    var info: ConfigurationInfo

    static func table(_ rows: [ConfigurationRow]) -> String {
        let header = ["Name", "Kind", "ComputerName", "Description"]
        let lines = [header, header.map { String(repeating: "-", count: $0.count) }]
            + rows.map { [$0.info.name, $0.info.kind, $0.computerName, $0.info.description] }
        var widths = [Int](repeating: 0, count: header.count)
        for line in lines { for (i, cell) in line.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var text = ""
        for line in lines {
            for (i, cell) in line.enumerated() {
                if i > 0 { text += " " }
                text += cell
                if i < line.count - 1 { text += String(repeating: " ", count: widths[i] - cell.count) }
            }
            text += "\n"
        }
        return text
    }

    /// `--json` (docs/json.md): one object per configuration, then the failures as error objects.
    static func json(_ rows: [ConfigurationRow], failures: [Failures.Entry] = []) -> String {
        var out = PrettyJSON()
        out.beginArray()
        for row in rows {
            out.element()
            out.beginObject()
            out.key("computerName"); out.string(row.computerName)
            out.key("description"); out.string(row.info.description)
            out.key("error"); out.null()
            out.key("kind"); out.string(row.info.kind)
            out.key("name"); out.string(row.info.name)
            out.endObject()
        }
        FailureJSON.append(failures, to: &out)
        out.endArray()
        return String(decoding: out.bytes, as: UTF8.self) + "\n"
    }
}
