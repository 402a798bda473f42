import ArgumentParser
import Glibc
import TetherClient
import TetherIO
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
    @Flag(help: "Print the jobs as a JSON array, with an error object per failure (schema: docs/json.md).") var json = false
    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    static let timedOutStatus: Int32 = 124

    func validate() throws {
        if let timeout, !(timeout >= 0 && timeout.isFinite) { throw ValidationError("--timeout must be a number of seconds ≥ 0") }
    }

    func run() async throws {
        try await reportingErrors(json: json) {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: selector, allWhenUnselected: true), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let targets = try await context.resolveJobs(selector, jobSelector)
            let needed = any ? min(1, targets.count) : targets.count
            // Unstructured tasks: a wait that is over (enough jobs ended, or the timeout)
            // must not wait for the others' answers.
            let tally = WaitTally(needed: needed, total: targets.count)
            let ended: [JobTarget] = await withCheckedContinuation { continuation in
                tally.onDone = { continuation.resume(returning: $0) }
                for target in targets {
                    Task {
                        do {
                            var done = target
                            done.info = try await target.jobs.wait(jobID: target.info.id)
                            tally.ended(done)
                        } catch {
                            // After the wait is over, the connections close under the rest.
                            if tally.failed() { context.failures.report(error, host: target.computerName) }
                        }
                    }
                }
                if let timeout {
                    Task {
                        try? await Task.sleep(nanoseconds: UInt64(timeout * 1_000_000_000))
                        tally.timedOut()
                    }
                }
                tally.check()
            }
            await context.pool.closeAll()
            JobTableOutput.print(ended, json: json, failures: context.failures)
            try context.failures.exitIfFailed()
            if ended.count < needed { throw ExitCode(Self.timedOutStatus) }
        }
    }
}

/// Counts a wait's answers; calls `onDone` once: enough jobs ended, every job answered, or
/// the timeout.
final class WaitTally: @unchecked Sendable {
    private let lock = Lock()
    private let needed: Int
    private let total: Int
    private var results: [JobTarget] = []
    private var answered = 0
    private var finished = false
    var onDone: ([JobTarget]) -> Void = { _ in }

    init(needed: Int, total: Int) {
        self.needed = needed
        self.total = total
    }

    func ended(_ target: JobTarget) { update { $0.results.append(target); $0.answered += 1 } }
    /// Returns false if the wait was already over (the failure is moot).
    @discardableResult
    func failed() -> Bool {
        if lock.withLock({ finished }) { return false }
        update { $0.answered += 1 }
        return true
    }
    func timedOut() { update { $0.answered = $0.total + 1 } }
    func check() { update { _ in } }

    private func update(_ change: (WaitTally) -> Void) {
        let done: [JobTarget]? = lock.withLock {
            guard !finished else { return nil }
            change(self)
            guard results.count >= needed || answered >= total else { return nil }
            finished = true
            return results
        }
        if let done { onDone(done) }
    }
}
