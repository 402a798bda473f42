import Glibc
import TetherIO
import TetherProtocol

/// What a session runs its commands with. The journal, channels, stdin, busy waiting and
/// the session's life are the `Session`'s and the same for every kind; only how a
/// command is started and how its end is seen differ: a persistent bash
/// (`BashInterpreter`) for `shell` configurations, one execve per allowed command line
/// and no shell at all (`RestrictedInterpreter`) for `restricted` ones.
protocol Interpreter: AnyObject {
    /// The process `reaped` is for: bash, or the running command of a restricted session.
    var pid: pid_t { get }
    /// A command can start now.
    var isIdle: Bool { get }
    /// It came up (a death before that is a failure to start the session).
    var becameReady: Bool { get }
    /// No process it started is left.
    var groupIsEmpty: Bool { get }

    var onReady: () -> Void { get set }
    var onOutput: (Record.Kind, [UInt8]) -> Void { get set }
    var onCommandStarted: () -> Void { get set }
    var onCommandFinished: (Int32) -> Void { get set }
    var onExit: (ExitStatus) -> Void { get set }
    var onGroupKilled: () -> Void { get set }
    var mayReadOutput: () -> Bool { get set }

    /// Starts the command the session prepared (only when `isIdle`); `terminal` is the
    /// output side of its pty, if it runs on one.
    func runPreparedCommand(terminal: OutputPipe?)
    func interrupt()
    func terminate()
    func killGroup()
    func updateReading()
    /// `pid` was reaped with this status.
    func reaped(_ status: ExitStatus)
}

extension BashInterpreter: Interpreter {}
