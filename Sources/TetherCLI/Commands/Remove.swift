import ArgumentParser
import TetherClient
import TetherProtocol

struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "End sessions: stop their interpreters and forget them.",
        discussion: prose("""
        Ends each selected session on its host (its interpreter and any running command
        are killed) and drops it from this client's list. A session the host no longer
        has is just dropped from the list. A session another client holds is removed only
        with --force (as connect takes it only with --force); a client following its
        command is told who removed it.

        Examples:
          tether remove --name deploy
          tether remove --id 3
          tether remove --computer web1 --name 'tmp*'
          tether remove --computer web1 --name stuck --force
        """))

    @OptionGroup(title: "Session selection") var selector: SelectorArguments

    @Flag(help: "Remove sessions even if another client holds them.")
    var force = false
    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func run() async throws {
        try await reportingErrors {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: selector), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let targets = try await context.resolve(selector)
            let removed: [String?] = await concurrentMap(targets) { target in
                do {
                    let host = try await context.pool.host(target.computerName)
                    try await host.remove(instanceID: target.instanceID, force: force)
                    return target.instanceID
                } catch let error as TetherClientError where error.remoteCode == .notFound {
                    return target.instanceID
                } catch {
                    context.failures.report(error, host: target.computerName)
                    return nil
                }
            }
            await context.pool.closeAll()
            try context.store.forget(instanceIDs: Set(removed.compactMap { $0 }))
            try context.failures.exitIfFailed()
        }
    }
}
