import Glibc
import TetherClient
import TetherIO

/// Measurements through the TetherClient library, in one process and on one connection:
/// what an application that keeps a session open sees.
enum SessionProbe {
    /// `command` (`true` by default) run `warmup + count` times in one session; the last
    /// `count` timed. With
    /// `onLoop`, the awaiting task runs on the client's loop thread
    /// (`TetherClient.taskExecutor`); otherwise on Swift's global pool, one thread hop
    /// each way per await.
    static func roundTrips(destination: String, command: String = "true", count: Int, warmup: Int,
                           onLoop: Bool) async throws -> [Double] {
        let client = try TetherClient()
        let name = "tether-bench-rt-\(getpid())-\(onLoop ? "loop" : "pool")"
        guard onLoop else {
            return try await run(client: client, destination: destination, name: name) { session in
                try await time(command, in: session, count: count, warmup: warmup)
            }
        }
        return try await withTaskExecutorPreference(client.taskExecutor) {
            try await run(client: client, destination: destination, name: name) { session in
                try await time(command, in: session, count: count, warmup: warmup)
            }
        }
    }

    private static func time(_ command: String, in session: RemoteSession, count: Int,
                             warmup: Int) async throws -> [Double] {
        var samples: [Double] = []
        samples.reserveCapacity(count)
        for round in 0..<(warmup + count) {
            let started = Reactor.now()
            let result = try await session.invoke(command).collect()
            let elapsed = Double(Reactor.now() - started) / 1e9
            guard result.exitStatus == 0 else {
                throw BenchError("`\(command)` exited with status \(result.exitStatus) in the bench session")
            }
            if round >= warmup { samples.append(elapsed) }
        }
        return samples
    }

    /// `head -c bytes /dev/zero` in a session, its output counted and thrown away.
    /// Returns the seconds from invoke to the exit status.
    static func stream(destination: String, bytes: Int) async throws -> Double {
        try await run(client: try TetherClient(), destination: destination, name: "tether-bench-stream-\(getpid())") { session in
            let started = Reactor.now()
            let run = try await session.invoke("head -c \(bytes) /dev/zero")
            var received = 0
            for try await chunk in run.output {
                if case .stdout(let data) = chunk { received += data.count }
            }
            let status = try await run.exitStatus
            let elapsed = Double(Reactor.now() - started) / 1e9
            guard status == 0, received == bytes else {
                throw BenchError("stream: got \(received) of \(bytes) bytes, exit status \(status)")
            }
            return elapsed
        }
    }

    /// Connects, creates a session, runs `body`, and removes the session again —
    /// also when `body` fails, so a bench run leaves nothing behind on the host.
    private static func run<T>(client: TetherClient, destination: String, name: String,
                               _ body: (RemoteSession) async throws -> T) async throws -> T {
        let host = try await client.connect(destination)
        let session = try await host.createSession(name: name)
        let outcome: Result<T, Error>
        do {
            outcome = .success(try await body(session))
        } catch {
            outcome = .failure(error)
        }
        try? await host.remove(instanceID: session.instanceID)
        await host.close()
        return try outcome.get()
    }
}
