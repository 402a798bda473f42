import Foundation
import TetherIO
import TetherSSH

/// The floor a session round trip is compared with: 1-byte round trips over a bare
/// libssh2 `SSHConnection` to the host's `echo` subsystem (`Subsystem echo /bin/cat`),
/// through the same client code and the same sshd — everything Tether adds is the rest.
///
/// Runs on a Reactor of its own on a thread of its own; the samples come back through a
/// continuation once `warmup + count` round trips are done.
enum EchoProbe {
    static func measure(destination: String, count: Int, warmup: Int) async throws -> [Double] {
        let target = try SSHConfig.resolve(destination, overrides: SSHOverrides(subsystem: "echo"))
        let reactor = try Reactor()
        let thread = Thread { reactor.run() }
        thread.name = "tether-bench-echo"
        thread.start()
        defer { reactor.stop() }
        return try await withCheckedThrowingContinuation { continuation in
            reactor.execute {
                let run = EchoRun(reactor: reactor, target: target, count: count, warmup: warmup) { result in
                    continuation.resume(with: result)
                }
                run.start()
            }
        }
    }
}

/// One probe on the loop: write a byte, wait for it to come back, repeat.
private final class EchoRun {
    private let connection: SSHConnection
    private let count: Int
    private let warmup: Int
    private var done: ((Result<[Double], Error>) -> Void)?
    private var samples: [Double] = []
    private var round = 0
    private var sentAt: UInt64 = 0
    /// Keeps the run alive while the connection's callbacks hold it weakly.
    private var selfReference: EchoRun?

    init(reactor: Reactor, target: SSHTarget, count: Int, warmup: Int,
         done: @escaping (Result<[Double], Error>) -> Void) {
        connection = SSHConnection(reactor: reactor, target: target)
        self.count = count
        self.warmup = warmup
        self.done = done
    }

    func start() {
        selfReference = self
        connection.start(
            onReady: { [weak self] in self?.sendByte() },
            onData: { [weak self] bytes in self?.received(bytes.count) },
            onClose: { [weak self] error in
                self?.finish(.failure(BenchError(
                    "echo connection closed early: \(error?.message ?? "by the host") (does sshd have `Subsystem echo /bin/cat`?)")))
            })
    }

    private func sendByte() {
        sentAt = Reactor.now()
        connection.write([0x2a])
    }

    private func received(_ byteCount: Int) {
        // One byte out, one byte back: anything else means the echo is not an echo.
        guard byteCount == 1 else {
            finish(.failure(BenchError("echo subsystem sent \(byteCount) bytes for 1")))
            return
        }
        let elapsed = Double(Reactor.now() - sentAt) / 1e9
        round += 1
        if round > warmup { samples.append(elapsed) }
        if samples.count >= count {
            finish(.success(samples))
        } else {
            sendByte()
        }
    }

    private func finish(_ result: Result<[Double], Error>) {
        guard let done else { return }
        self.done = nil
        connection.close()
        selfReference = nil
        done(result)
    }
}
