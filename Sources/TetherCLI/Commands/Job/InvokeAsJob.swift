import ArgumentParser
import TetherClient
import TetherProtocol

/// `tether invoke --as-job`: the options, and starting the jobs. (Jobs read /dev/null:
/// `invoke`'s stdin is not forwarded to them.)
struct AsJobArguments: ParsableArguments {
    @Flag(name: .customLong("as-job"), help: "Start SCRIPT as a job in each session and return at once (see tether job).")
    var asJob = false

    @Option(name: .customLong("job-name"), help: ArgumentHelp("With --as-job: the jobs' name (default Job<Id>).", valueName: "NAME"))
    var jobName: String?

    func validate(inDisconnectedSession: Bool, noWait: Bool) throws {
        if jobName != nil && !asJob { throw ValidationError("--job-name names the job --as-job starts; add --as-job") }
        guard asJob else { return }
        if inDisconnectedSession { throw ValidationError("--as-job and --in-disconnected-session are two ways to leave work running; pick one") }
        if noWait { throw ValidationError("--no-wait has no meaning with --as-job: a job never waits for the session's command") }
    }
}

extension Invoke {
    /// Starts the script as a job in each selected session (or a new temporary session
    /// per computer) and prints the job table.
    func startJobs(context: CommandContext, script: String, arguments: [String]) async throws {
        let sessions: [SessionTarget?]
        if selector.hasSessionFilter {
            sessions = try await context.resolve(selector)
        } else {
            sessions = await concurrentMap(selector.computers) { computer in
                do {
                    let host = try await context.pool.host(computer)
                    let name = TemporaryJobSession.namePrefix + String(UInt32.random(in: 0...UInt32.max), radix: 16)
                    let session = try await host.createSession(name: name, idleTimeout: TemporaryJobSession.idleTimeout)
                    // Nobody holds it: any client may use it; its job keeps it busy.
                    let summary = try await host.release(instanceID: session.instanceID)
                    guard let local = try context.record([summary]).first else { return nil }
                    return SessionTarget(local: local)
                } catch {
                    context.failures.report(error, host: computer)
                    return nil
                }
            }
        }
        let started: [JobTarget?] = await concurrentMap(sessions.compactMap { $0 }, limit: throttleLimit) { [asJob] session in
            do {
                let host = try await context.pool.host(session.computerName)
                let jobs = host.jobs(instanceID: session.instanceID)
                let info = try await jobs.start(script, arguments: arguments, name: asJob.jobName)
                return JobTarget(session: session, jobs: jobs, info: info)
            } catch {
                context.failures.report(error, host: session.computerName)
                return nil
            }
        }
        await context.pool.closeAll()
        JobTableOutput.print(started.compactMap { $0 }, json: json, failures: context.failures)
        try context.failures.exitIfFailed()
    }
}
