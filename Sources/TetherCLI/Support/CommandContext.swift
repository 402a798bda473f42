import TetherClient
import TetherProtocol

/// What every verb needs: the client identity, its session list, and a connection pool.
struct CommandContext: Sendable {
    let client: TetherClient
    let pool: HostPool
    let failures = Failures()

    init(connection: ConnectionArguments) throws {
        // Through the keeper (warm shared connections) unless TETHER_KEEPER=0.
        client = try TetherClient(home: .default, keeper: .thisExecutable)
        pool = HostPool(client: client, options: connection.options)
    }

    var store: LocalSessionStore { client.home.sessions }

    /// Records sessions in the local list (so they get an Id) and returns the entries.
    func record(_ summaries: [SessionSummary]) throws -> [LocalSession] {
        // How they were reached, so later verbs connect the same way.
        try store.record(summaries.map {
            (instanceID: $0.instanceID, name: $0.name, computerName: $0.computerName,
             configuration: $0.info.configuration)
        }, connection: LocalSession.rememberedConnection(pool.options))
    }
}
