import ArgumentParser
import TetherClient
import TetherProtocol

struct JobReceive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Print the output jobs recorded that was not yet received.",
        discussion: prose("""
        Prints each selected job's unread output — stdout to stdout, stderr to stderr, in
        the order it was written, warnings, information, progress and (with --verbose)
        verbose records as tether invoke shows them — and marks it read, so the next receive prints only
        what came after; --keep leaves it unread. --wait follows the jobs live until they
        end and exits with the status of the first that failed (else 0). With several
        jobs, lines are prefixed with [computer:job]. Output counts as read once it is
        written out: if the connection is lost, receive exits 255 and the rest stays on
        the host for the next receive (the job goes on).

        Examples:
          tether job receive --name deploy --job-id 1
          tether job receive --computer web1 --job-name build --wait
          tether job receive --name deploy --keep > build.log
        """))

    @OptionGroup(title: "Session selection") var selector: SelectorArguments
    @OptionGroup(title: "Job selection") var jobSelector: JobSelectorArguments
    @Flag(help: "Leave the output unread (a later receive prints it again).") var keep = false
    @Flag(help: "Follow the jobs until they end; exit with the first non-zero status.") var wait = false
    @Flag(name: .customLong("hide-computer-name"), help: "No [computer:job] prefix with several jobs.")
    var hideComputerName = false
    @OptionGroup(title: "Streams") var streams: StreamArguments
    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func run() async throws {
        try await reportingErrors {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: selector, allWhenUnselected: true), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let targets = try await context.resolveJobs(selector, jobSelector)
            InterruptHandler(onFirst: {}, nothingToInterrupt: { true }).install()
            let prefix = targets.count > 1 && !hideComputerName
            let display = StreamDisplay(showVerbose: streams.showVerbose)
            defer { display.finish() }
            let codes: [Int32] = await concurrentMap(targets) { [keep, wait] target in
                let output = TargetOutput(prefix: prefix ? "[\(target.label)] " : nil)
                let label = prefix ? target.label : nil
                defer { display.commandEnded(label: label) }
                do {
                    let reception = try await target.jobs.receive(jobID: target.info.id, follow: wait, keep: keep)
                    let sequence = reception.output
                    for try await chunk in sequence {
                        // Acknowledged only once written (as tether receive).
                        switch chunk {
                        case .stdout(let bytes): try output.stdout(bytes, from: sequence)
                        case .stderr(let bytes): try output.stderr(bytes, from: sequence)
                        case .stream(let record): try display.show(record, label: label, output: output, from: sequence)
                        case .dropped(let bytes, let records):
                            try output.finish()
                            Terminal.shared.err("tether: \(target.label): \(bytes) bytes of output (\(records) records) were dropped while nobody read them\n")
                        }
                    }
                    try output.finish()
                    guard wait else { return 0 }
                    return try await reception.end?.exitStatus ?? 0
                } catch let error as OutputWriteError {
                    Terminal.shared.leave(after: error)
                } catch {
                    output.finishOrLeave()
                    return context.failures.report(error, host: target.computerName)
                }
            }
            await context.pool.closeAll()
            if let code = codes.first(where: { $0 != 0 }) { throw ExitCode(code) }
            try context.failures.exitIfFailed()
        }
    }
}
