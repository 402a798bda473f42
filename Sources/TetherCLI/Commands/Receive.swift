import ArgumentParser
import TetherClient
import TetherProtocol

struct Receive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the output a session recorded that was not yet received, then follow its running command.",
        discussion: prose("""
        Connects to each selected session (claiming it for this client), prints every
        output record no client has received yet — stdout to stdout, stderr to stderr, in
        order; warnings, information, progress and (with --verbose) verbose records as
        invoke shows them — then follows the command running now until it ends, and exits with its
        status (else with the status of the last command that ended in the output, else
        0). Prints nothing if there is nothing new. Output is acknowledged as it is
        printed, so a second receive prints only what came after.

        If the connection is lost while following, receive says so on stderr, keeps
        reconnecting (at once, then every 50 ms, after 10 s every 200 ms, for --reconnect-timeout
        seconds, default 300) and goes on exactly where it stopped: no line lost or
        printed twice. If the deadline passes it exits 255; a later receive collects the
        rest. Ctrl-C stops waiting (exit 130); unprinted output stays on the host.

        Output is acknowledged only once written (write(2) returned for it). If the reader
        goes away (`| head`), receive stops quietly with the status of SIGPIPE (141 in a
        shell); if stdout cannot be written (a full disk, an I/O error) it says so and
        exits 1. Either way what was not written stays on the host for the next receive.
        With several sessions, lines are prefixed with [computer] and come out whole; a
        line is acknowledged once written, so a killed receive loses no partial line.

        Examples:
          tether receive --name deploy
          tether receive --computer web1 --name deploy
          tether receive --id 3 > deploy.log
        """))

    @OptionGroup(title: "Session selection") var selector: SelectorArguments

    @Flag(name: .customLong("hide-computer-name"), help: "No [computer] prefix on output lines (several sessions).")
    var hideComputerName = false

    @OptionGroup(title: "Streams") var streams: StreamArguments

    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    @OptionGroup(title: "Resuming after a lost connection") var reconnect: ReconnectArguments

    func run() async throws {
        try await reportingErrors {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: selector), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let targets = try await context.resolve(selector)
            let prefix = targets.count > 1 && !hideComputerName
            let reconnecting = ReconnectingTargets()
            // Nothing here to interrupt: Ctrl-C stops waiting; what was not printed stays
            // journaled on the host for the next receive.
            InterruptHandler(onFirst: {}, nothingToInterrupt: { true }).install()
            let timeout = reconnect.reconnectTimeout
            let display = StreamDisplay(showVerbose: streams.showVerbose)
            defer { display.finish() }
            display.beginFanOut(total: targets.count)
            let codes: [Int32] = await concurrentMap(targets) { target in
                let computer = target.computerName
                let output = TargetOutput(prefix: prefix ? "[\(computer)] " : nil)
                let label = prefix ? computer : nil
                let code = await Self.receive(target, output: output, label: label, display: display, context: context,
                                              timeout: timeout, reconnecting: reconnecting)
                display.commandEnded(label: label)
                display.targetFinished(failed: code != 0)
                return code
            }
            display.finish()
            await context.pool.closeAll()
            if let code = codes.first(where: { $0 != 0 }) { throw ExitCode(code) }
            try context.failures.exitIfFailed()
        }
    }

    private static func receive(_ target: SessionTarget, output: TargetOutput, label: String?, display: StreamDisplay,
                                context: CommandContext, timeout: Double,
                                reconnecting: ReconnectingTargets) async -> Int32 {
        let computer = target.computerName
        do {
            var host = try await context.pool.host(computer)
            let attaching = host
            var reception = try await StallNotice.around(attaching, instanceID: target.instanceID, name: target.name,
                                                         waitingFor: "to answer") {
                try await attaching.session(instanceID: target.instanceID, name: target.name).receive()
            }
            let reconnector = Reconnector(computerName: computer, pool: context.pool, timeout: timeout,
                                          reconnecting: reconnecting)
            while true {
                do {
                    let sequence = reception.output
                    for try await chunk in sequence {
                        // A record is acknowledged only once written: a write that
                        // fails leaves the loop before the next one is asked for.
                        switch chunk {
                        case .stdout(let bytes): try output.stdout(bytes, from: sequence)
                        case .stderr(let bytes): try output.stderr(bytes, from: sequence)
                        case .stream(let record):
                            try display.show(record, label: label, output: output, from: sequence)
                        case .dropped(let bytes, let records):
                            try output.finish()
                            Terminal.shared.err("tether: \(computer): \(bytes) bytes of output (\(records) records) were dropped while nobody read them\n")
                        }
                    }
                    break
                } catch let error as TetherClientError where error.isConnectionLost {
                    // Resume where this process stopped: every record once, in order.
                    try output.finish()
                    guard timeout > 0 else { throw Reconnector.notResumed(error, computerName: computer) }
                    (reception, host) = try await reconnector.resume(reception.resumePoint, lost: host, cause: error)
                }
            }
            try output.finish()
            if let ended = try await reception.sessionEnded {
                Terminal.shared.err("tether: \(computer): \(ended)\n")
            }
            return try await reception.exitStatus ?? 0
        } catch let error as OutputWriteError {
            Terminal.shared.leave(after: error)
        } catch {
            output.finishOrLeave()
            return context.failures.report(error, host: computer)
        }
    }
}
