import ArgumentParser
import TetherClient
import TetherProtocol

struct JobRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Forget ended jobs and their unread output (--force stops running ones first).",
        discussion: prose("""
        A running job is refused unless --force, which stops it first (as tether job
        stop). The temporary session `tether invoke --computer HOST --as-job` made for a
        job is removed with its last job.

        Examples:
          tether job remove --name deploy --job-id 1
          tether job remove --state Completed
          tether job remove --computer web1 --job-name 'tail*' --force
        """))

    @OptionGroup(title: "Session selection") var selector: SelectorArguments
    @OptionGroup(title: "Job selection") var jobSelector: JobSelectorArguments
    @Flag(help: "Stop running jobs first instead of refusing them.") var force = false
    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func validate() throws {
        if !jobSelector.hasFilter && !selector.hasSessionFilter {
            throw ValidationError("say which jobs to remove: --job-id, --job-name, --job-instance-id or --state (with a session selector, all its jobs)")
        }
    }

    func run() async throws {
        try await reportingErrors {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: selector, allWhenUnselected: true), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let targets = try await context.resolveJobs(selector, jobSelector)
            let removed: [SessionTarget?] = await concurrentMap(targets) { [force] target in
                do {
                    try await target.jobs.remove(jobID: target.info.id, force: force)
                    return target.session
                } catch {
                    context.failures.report(error, host: target.computerName)
                    return nil
                }
            }
            // A temporary job session goes with its last job.
            var seen = Set<String>()
            let sessions = removed.compactMap { $0 }.filter {
                TemporaryJobSession.isTemporary($0.name) && seen.insert($0.instanceID).inserted
            }
            let gone: [String?] = await concurrentMap(sessions) { session in
                do {
                    let host = try await context.pool.host(session.computerName)
                    guard try await host.jobs(instanceID: session.instanceID).list().isEmpty else { return nil }
                    try await host.remove(instanceID: session.instanceID)
                    return session.instanceID
                } catch {
                    context.failures.report(error, host: session.computerName)
                    return nil
                }
            }
            try context.store.forget(instanceIDs: Set(gone.compactMap { $0 }))
            await context.pool.closeAll()
            try context.failures.exitIfFailed()
        }
    }
}
