import ArgumentParser
import TetherClient
import TetherProtocol

struct JobStop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop running jobs: SIGINT, then SIGTERM, then SIGKILL to each job's process group.",
        discussion: prose("""
        Each signal goes to the job's whole process group (the job and everything it
        started), the next one 2 s later if any of the group is left. Returns when the
        jobs have ended (state Stopped) and prints them. Their output stays readable.

        Examples:
          tether job stop --name deploy --job-id 2
          tether job stop --computer web1 --job-name 'tail*'
        """))

    @OptionGroup(title: "Session selection") var selector: SelectorArguments
    @OptionGroup(title: "Job selection") var jobSelector: JobSelectorArguments
    @Flag(help: "Print the jobs as a JSON array, with an error object per failure (schema: docs/json.md).") var json = false
    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func validate() throws {
        if !jobSelector.hasFilter && !selector.hasSessionFilter {
            throw ValidationError("say which jobs to stop: --job-id, --job-name, --job-instance-id or --state (with a session selector, all its jobs)")
        }
    }

    func run() async throws {
        try await reportingErrors(json: json) {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: selector, allWhenUnselected: true), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let targets = try await context.resolveJobs(selector, jobSelector)
            let stopped: [JobTarget?] = await concurrentMap(targets) { target in
                do {
                    var done = target
                    done.info = try await target.jobs.stop(jobID: target.info.id)
                    return done
                } catch {
                    context.failures.report(error, host: target.computerName)
                    return nil
                }
            }
            await context.pool.closeAll()
            JobTableOutput.print(stopped.compactMap { $0 }, json: json, failures: context.failures)
            try context.failures.exitIfFailed()
        }
    }
}
