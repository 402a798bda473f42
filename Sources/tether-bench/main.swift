import Foundation
import TetherClient

/// `tether-bench`: in-process measurements for scripts/bench, printed as one JSON object
/// (times in seconds). The ssh config comes from $TETHER_SSH_CONFIG, the client identity
/// from $TETHER_HOME, like the `tether` CLI.
///
///     tether-bench round-trip [--count N] [--warmup N] [--command TEXT] HOST
///         median time of `true` in an open session vs a 1-byte echo round trip over a
///         bare libssh2 channel to the host's `echo` subsystem (the anchor), and vs
///         `true; echo $?` in a bash sshd runs directly (`bash_floor`) and behind a relay
///         that only copies (`relay_floor`, null without socat) and behind two
///         (`relay2_floor`: the price of one more hop), and `true` run by the runspace's
///         own per-command driver in a bash behind one relay (`driver_floor`, no Tether
///         process: what the driver's guarantees cost in bash). With --command, that
///         command instead of `true` in the session (the floors still run `true`). With
///         --order floors-first, the floors are measured first and the session last
///         (scripts/bench alternates the two orders between runs, so neither side always
///         gets the machine's first or last seconds).
///     tether-bench stream [--bytes N] HOST
///         `head -c N /dev/zero` in a session, output read by the library and discarded
///     tether-bench raw-stream [--bytes N] HOST
///         the same through a bare libssh2 channel from bash behind sshd (`seconds`) and
///         behind a relay that only copies (`relay_seconds`, null without socat) and
///         behind two (`relay2_seconds`)
let usage = """
    usage: tether-bench round-trip [--count N] [--warmup N] [--command TEXT] [--order tether-first|floors-first] HOST
           tether-bench stream [--bytes N] HOST
           tether-bench raw-stream [--bytes N] HOST
    """

struct Arguments {
    var command: String
    var host: String
    var options: [String: String]

    init(_ argv: [String]) throws {
        guard let command = argv.first else { throw BenchError(usage) }
        self.command = command
        var host: String?
        var options: [String: String] = [:]
        var rest = argv.dropFirst()[...]
        while let word = rest.popFirst() {
            if word.hasPrefix("--") {
                let name = String(word.dropFirst(2))
                guard let value = rest.popFirst() else { throw BenchError("\(word) needs a value\n\(usage)") }
                options[name] = value
            } else if host == nil {
                host = word
            } else {
                throw BenchError("unexpected argument '\(word)'\n\(usage)")
            }
        }
        guard let host else { throw BenchError("give the HOST to measure\n\(usage)") }
        self.host = host
        self.options = options
    }

    func option(_ name: String, default value: Int, allowed: Set<String>) throws -> Int {
        guard let text = try option(name, allowed: allowed) else { return value }
        guard let number = Int(text.replacingOccurrences(of: "_", with: "")), number > 0 else {
            throw BenchError("--\(name) needs a positive number, not '\(text)'")
        }
        return number
    }

    func option(_ name: String, allowed: Set<String>) throws -> String? {
        if let unknown = options.keys.first(where: { !allowed.contains($0) }) {
            throw BenchError("unknown option --\(unknown) for \(command)\n\(usage)")
        }
        return options[name]
    }
}

/// NaN (a measurement that could not be made) is written as null.
func json(_ fields: [(String, Double)]) -> String {
    "{" + fields.map { "\"\($0.0)\": \($0.1.isNaN ? "null" : "\($0.1)")" }.joined(separator: ", ") + "}"
}

func run() async throws {
    let arguments = try Arguments(Array(CommandLine.arguments.dropFirst()))
    switch arguments.command {
    case "round-trip":
        let allowed: Set<String> = ["count", "warmup", "command", "order"]
        let command = try arguments.option("command", allowed: allowed) ?? "true"
        let count = try arguments.option("count", default: 1000, allowed: allowed)
        let warmup = try arguments.option("warmup", default: max(10, count / 20), allowed: allowed)
        let order = try arguments.option("order", allowed: allowed) ?? "tether-first"
        guard order == "tether-first" || order == "floors-first" else {
            throw BenchError("--order is tether-first or floors-first, not '\(order)'")
        }
        // "tether": awaited on the client's loop executor, the library's low-latency way;
        // "tether_pool": the same from Swift's global executor (a thread hop per await).
        let host = arguments.host
        let session: () async throws -> (tether: Timings, pool: Timings) = {
            (Timings(try await SessionProbe.roundTrips(destination: host, command: command, count: count,
                                                       warmup: warmup, onLoop: true)),
             Timings(try await SessionProbe.roundTrips(destination: host, command: command, count: count,
                                                       warmup: warmup, onLoop: false)))
        }
        let floors: () async throws -> (echo: Timings, bash: Timings, relayed: Timings?, relayedTwice: Timings?,
                                        driver: Timings?) = {
            (Timings(try await ChannelProbe.measure(.echo, destination: host, count: count, warmup: warmup)),
             Timings(try await ChannelProbe.measure(.bashRoundTrip(.direct), destination: host, count: count,
                                                    warmup: warmup)),
             (try? await ChannelProbe.measure(.bashRoundTrip(.relayed), destination: host, count: count,
                                              warmup: warmup)).map(Timings.init),
             (try? await ChannelProbe.measure(.bashRoundTrip(.relayedTwice), destination: host, count: count,
                                              warmup: warmup)).map(Timings.init),
             (try? await ChannelProbe.measure(.driverRoundTrip, destination: host, count: count,
                                              warmup: warmup)).map(Timings.init))
        }
        var measured = order == "tether-first" ? try await session() : nil
        let (echo, bash, relayed, relayedTwice, driver) = try await floors()
        if measured == nil { measured = try await session() }
        guard let (tether, pool) = measured else { throw BenchError("round-trip: the session was not measured") }
        print(json([
            ("tether", tether.median), ("echo", echo.median), ("tether_pool", pool.median),
            ("bash_floor", bash.median), ("bash_floor_p90", bash.percentile(0.9)),
            ("relay_floor", relayed?.median ?? .nan), ("relay2_floor", relayedTwice?.median ?? .nan),
            ("driver_floor", driver?.median ?? .nan),
            ("tether_p90", tether.percentile(0.9)), ("echo_p90", echo.percentile(0.9)),
            ("tether_mean", tether.mean), ("echo_mean", echo.mean),
            ("count", Double(count)),
        ]))
    case "stream":
        let bytes = try arguments.option("bytes", default: 1_000_000_000, allowed: ["bytes"])
        let seconds = try await SessionProbe.stream(destination: arguments.host, bytes: bytes)
        print(json([("seconds", seconds), ("bytes", Double(bytes)), ("mb_per_s", Double(bytes) / seconds / 1e6)]))
    case "raw-stream":
        let bytes = try arguments.option("bytes", default: 1_000_000_000, allowed: ["bytes"])
        let seconds = try await ChannelProbe.measure(.rawStream(.direct, bytes: bytes), destination: arguments.host,
                                                     count: 1, warmup: 0)[0]
        let relayed = try? await ChannelProbe.measure(.rawStream(.relayed, bytes: bytes), destination: arguments.host,
                                                      count: 1, warmup: 0)[0]
        let relayedTwice = try? await ChannelProbe.measure(.rawStream(.relayedTwice, bytes: bytes),
                                                           destination: arguments.host, count: 1, warmup: 0)[0]
        print(json([("seconds", seconds), ("relay_seconds", relayed ?? .nan),
                    ("relay2_seconds", relayedTwice ?? .nan), ("bytes", Double(bytes)),
                    ("mb_per_s", Double(bytes) / seconds / 1e6)]))
    case "-h", "--help", "help":
        print(usage)
    default:
        throw BenchError("unknown command '\(arguments.command)'\n\(usage)")
    }
}

do {
    try await run()
    TetherClient.shutdownEventLoop()
} catch {
    TetherClient.shutdownEventLoop()
    FileHandle.standardError.write(Data("tether-bench: \(error)\n".utf8))
    exit(1)
}
