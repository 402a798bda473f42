import ArgumentParser
import TetherClient
import TetherProtocol

struct JobGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "List jobs: Id, Name, State, HasMoreData, Location, Session, Command.",
        discussion: prose("""
        State is NotStarted, Running, Blocked (its output buffer is full in block mode:
        it waits for a receive), Completed, Failed (non-zero exit) or Stopped. HasMoreData
        says whether it has output no receive has taken yet. Ids count from 1 in each
        session. --json prints every field, exit status and times included.

        Examples:
          tether job get
          tether job get --computer web1,web2
          tether job get --name deploy --state Running --json
        """))

    @OptionGroup(title: "Session selection") var selector: SelectorArguments
    @OptionGroup(title: "Job selection") var jobSelector: JobSelectorArguments
    @Flag(help: "Print the jobs as a JSON array, with an error object per failure (schema: docs/json.md).") var json = false
    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func run() async throws {
        try await reportingErrors(json: json) {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: selector, allWhenUnselected: true), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let targets = try await context.resolveJobs(selector, jobSelector, listing: true)
            await context.pool.closeAll()
            JobTableOutput.print(targets, json: json, failures: context.failures)
            try context.failures.exitIfFailed()
        }
    }
}
