#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import TetherClient

/// One connection per computer per `tether` run, opened concurrently on first use and
/// shared by every session on that computer. A failed connection is remembered so the
/// same error is not paid for twice.
actor HostPool {
    let client: TetherClient
    let options: ConnectionOptions
    private var hosts: [String: Task<RemoteHost, Error>] = [:]
    /// How sessions in the local list were reached, by computer (the newest session's).
    private var remembered: [String: ConnectionOptions]?

    init(client: TetherClient, options: ConnectionOptions) {
        self.client = client
        self.options = options
    }

    /// The options for a computer: what its sessions remember (`new -p 2222 …`), with this
    /// command line's options winning.
    func options(for computerName: String) -> ConnectionOptions {
        if remembered == nil { remembered = Self.remembered(in: client.home.sessions) }
        guard let stored = remembered?[computerName] else { return options }
        return stored.overridden(by: options)
    }

    /// How each computer's sessions in the local list were reached (the newest session's).
    static func remembered(in store: LocalSessionStore) -> [String: ConnectionOptions] {
        var found: [String: ConnectionOptions] = [:]
        for session in (try? store.all()) ?? [] {
            if let options = session.connectionOptions { found[session.computerName] = options }
        }
        return found
    }

    func host(_ computerName: String) async throws -> RemoteHost {
        if let task = hosts[computerName] { return try await task.value }
        let client = self.client
        let options = options(for: computerName)
        let task = Task { try await client.connect(computerName, options: options) }
        hosts[computerName] = task
        return try await task.value
    }

    /// A new connection to a computer whose connection `lost` was lost — or the one
    /// another target already made. `deadline` bounds the connect (the ssh connect
    /// timeout still applies if shorter).
    func reconnect(_ computerName: String, replacing lost: RemoteHost, deadline: Date) async throws -> RemoteHost {
        if let task = hosts[computerName], let current = try? await task.value,
           current !== lost, await current.closedError == nil {
            return current
        }
        let remaining = max(1, deadline.timeIntervalSinceNow)
        // A connect into a dead network must not eat the whole deadline: try again instead.
        let timeout = min(options(for: computerName).connectTimeout ?? 10, remaining)
        // Through `lost`: it knows the host's gateway, so no login shell runs for this.
        let task = Task { try await lost.reconnect(connectTimeout: timeout) }
        hosts[computerName] = task
        return try await task.value
    }

    /// A new connection to a computer whose first connection was lost while it was being
    /// opened (`Reconnector.reopen`): the failed one is forgotten — `host` would repeat its
    /// error — unless another target already made a working one.
    func reopen(_ computerName: String, deadline: Date) async throws -> RemoteHost {
        if let task = hosts[computerName], let current = try? await task.value, await current.closedError == nil {
            return current
        }
        var options = options(for: computerName)
        // A connect into a dead network must not eat the whole deadline: try again instead.
        options.connectTimeout = min(options.connectTimeout ?? 10, max(1, deadline.timeIntervalSinceNow))
        let client = self.client
        let task = Task { [options] in try await client.connect(computerName, options: options) }
        hosts[computerName] = task
        return try await task.value
    }

    /// Flushes acknowledgements and closes every connection (sessions stay on the hosts).
    func closeAll() async {
        let tasks = Array(hosts.values)
        hosts.removeAll()
        await withTaskGroup(of: Void.self) { group in
            for task in tasks {
                group.addTask {
                    if let host = try? await task.value { await host.close() }
                }
            }
        }
    }
}

/// Runs `body` for every item, at most `limit` at a time; results in input order.
func concurrentMap<T: Sendable, R: Sendable>(_ items: [T], limit: Int = 64,
                                             _ body: @escaping @Sendable (T) async -> R) async -> [R] {
    var results = [R?](repeating: nil, count: items.count)
    await withTaskGroup(of: (Int, R).self) { group in
        var next = 0
        func addNext() {
            let index = next
            let item = items[index]
            next += 1
            group.addTask { (index, await body(item)) }
        }
        while next < items.count && next < max(1, limit) { addNext() }
        for await (index, result) in group {
            results[index] = result
            if next < items.count { addNext() }
        }
    }
    return results.map { $0! }
}
