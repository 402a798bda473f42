import TetherIO

/// The thread-safe half of one running command: its output queue and its exit status.
/// The loop fills them; `Invocation` reads them from any task.
final class CommandCore: Sendable {
    let output: OutputQueue
    /// The command's exit status (128+N when killed by signal N).
    let exit = Completion<Int32>()
    /// The id the runspace gave the command (`started`).
    let commandID = Completion<UInt64>()

    /// How far forwarding the command's stdin got (for a resume after a lost connection).
    enum StdinProgress: Sendable { case none, forwarding, ended }
    private let lock = Lock()
    nonisolated(unsafe) private var stdin = StdinProgress.none  // guarded by lock

    init(output: OutputQueue) {
        self.output = output
    }

    var stdinProgress: StdinProgress {
        get { lock.withLock { stdin } }
        set { lock.withLock { stdin = newValue } }
    }

    /// Ends the command with an error: the consumer sees the rest, then the error.
    func fail(_ error: Error) {
        commandID.resolve(.failure(error))
        output.finish(.failure(error))
        exit.resolve(.failure(error))
    }

    func end(status: Int32) {
        output.finish()
        exit.resolve(.success(status))
    }
}
