import ArgumentParser
import Glibc
import TetherClient
import TetherProtocol

struct JobWait: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait",
        abstract: "Wait until the selected jobs (or, with --any, one of them) have ended.",
        discussion: prose("""
        Prints the ended jobs' table. Exit status: 0 when the wait is over, 124 (as
        timeout(1)) if --timeout SEC passed first — the jobs go on. Output stays unread;
        collect it with tether job receive.

        Examples:
          tether job wait --name deploy
          tether job wait --computer web1,web2 --any --timeout 300
        """))

    @OptionGroup(title: "Session selection") var selector: SelectorArguments
    @OptionGroup(title: "Job selection") var jobSelector: JobSelectorArguments
    @Flag(help: "Return when any one of the jobs has ended.") var any = false
    @Option(help: ArgumentHelp("Give up after SEC seconds (exit 124).", valueName: "SEC")) var timeout: Double?
    @Flag(help: "Print the jobs as a JSON array.") var json = false
    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    static let timedOutStatus: Int32 = 124

    func validate() throws {
        if let timeout, !(timeout >= 0 && timeout.isFinite) { throw ValidationError("--timeout must be a number of seconds ≥ 0") }
    }

    func run() async throws {
        try await reportingErrors {
            let context = try CommandContext(connection: connection)
            let targets = try await context.resolveJobs(selector, jobSelector)
            if targets.isEmpty && context.failures.isEmpty {
                throw TetherClientError(.usage, "no job matches; see tether job get")
            }
            let needed = any ? min(1, targets.count) : targets.count
            enum Outcome: Sendable { case ended(JobTarget), failed, timedOut }
            let ended = await withTaskGroup(of: Outcome.self) { group -> [JobTarget] in
                for target in targets {
                    group.addTask {
                        do {
                            var done = target
                            done.info = try await target.jobs.wait(jobID: target.info.id)
                            return .ended(done)
                        } catch {
                            context.failures.report(error, host: target.computerName)
                            return .failed
                        }
                    }
                }
                if let timeout {
                    group.addTask {
                        try? await Task.sleep(nanoseconds: UInt64(timeout * 1_000_000_000))
                        return .timedOut
                    }
                }
                var results: [JobTarget] = []
                var answered = 0
                for await outcome in group {
                    switch outcome {
                    case .ended(let target): results.append(target); answered += 1
                    case .failed: answered += 1
                    case .timedOut: answered = targets.count
                    }
                    if results.count >= needed || answered >= targets.count { break }
                }
                group.cancelAll()
                return results
            }
            await context.pool.closeAll()
            JobTableOutput.print(ended, json: json)
            try context.failures.exitIfFailed()
            if ended.count < needed { throw ExitCode(Self.timedOutStatus) }
        }
    }
}
