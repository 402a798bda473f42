#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import Glibc
import TetherClient
import TetherIO

/// The read–run loop of `tether enter`, on one session. Interactive (stdin and stdout
/// terminals): a prompt from libedit naming computer, session and directory, history
/// and completion from the session, and while a command runs the terminal is watched for
/// Ctrl-C and the `~.` escape. Scripted: lines from stdin, run one by one, no prompt.
final class EnterLoop: @unchecked Sendable {
    // @unchecked: driven by one task at a time (the verb's); the watcher and the editor
    // talk to it only through streams and continuations.

    /// How the loop ended, for the verb to act on (keep, release or remove the session).
    enum Ending: Sendable, Equatable {
        /// `exit [N]`, `logout` or Ctrl-D at the prompt; end of the script.
        case left(status: Int32)
        /// `~.`: the running command goes on, the session is to be released.
        case detached
        /// The session's shell is gone (killed); the reason.
        case sessionEnded(String)
    }

    private(set) var host: RemoteHost
    private(set) var session: RemoteSession
    let computerName: String
    private let pool: HostPool
    private let reconnectTimeout: Double
    private let interrupts: InterruptPipe?
    /// The prompt's directory, refreshed after each command.
    private var directory = "?"
    /// The session runs a restricted configuration: no shell, so lines go as typed (one
    /// command line each) and there is no history file, directory or completion to ask
    /// it for — those helpers are shell scripts it would refuse.
    var restricted = false
    private var lastStatus: Int32 = 0
    /// Whether the last output shown ended its line: if not (`printf x`, a `^C` the
    /// remote terminal echoed), the prompt starts on a new one.
    private let outputEndsLine = SharedFlag(initially: true)
    /// Warnings, information and (with --verbose) verbose records; the local terminal may
    /// be raw while a line runs (no progress bars then: the command owns the screen).
    var display = StreamDisplay(showVerbose: false)
    private let plainOutput = TargetOutput(prefix: nil)

    /// `interactive`: a prompt with libedit (stdin and stdout are terminals).
    init(host: RemoteHost, session: RemoteSession, pool: HostPool, reconnectTimeout: Double,
         interactive: Bool) throws {
        self.host = host
        self.session = session
        self.computerName = host.computerName
        self.pool = pool
        self.reconnectTimeout = reconnectTimeout
        if interactive {
            let interrupts = try InterruptPipe()
            self.interrupts = interrupts
            // The completer runs on the editor thread and may block; it asks the session.
            editorBox.editor = try LineEditor(interrupts: interrupts) { [unowned self] line, word, start in
                self.completions(line: line, word: word, wordStart: start)
            }
        } else {
            interrupts = nil
        }
    }

    /// Holds the editor made after `self` exists (its completer refers back to the loop).
    private let editorBox = EditorBox()
    private final class EditorBox: @unchecked Sendable { var editor: LineEditor? }
    private var lineEditor: LineEditor? { editorBox.editor }

    var prompt: String { "[\(computerName):\(session.name)] \(directory)$ " }
    static let continuationPrompt = "> "

    // MARK: interactive

    func runInteractive() async throws -> Ending {
        // What the session printed while nobody watched (a command left running with
        // `~.`, or started by another client), then that command live.
        if let ending = try await catchUp() { return ending }
        try await loadHistory()
        while true {
            await refreshDirectory()
            let input: String
            switch await readCommand() {
            case .command(let text): input = text
            case .endOfInput: return .left(status: 0)
            case .detach: return .detached
            }
            if let status = Self.leaveStatus(input, lastStatus: lastStatus) { return .left(status: status) }
            lineEditor?.addHistory(input)
            let script = restricted ? input : EnterScripts.command(for: input)
            if let ending = try await runLine(script, interactive: true) { return ending }
        }
    }

    private enum PromptInput {
        case command(String)
        /// Ctrl-D on an empty prompt.
        case endOfInput
        /// `~.` typed as a line: the same escape as while a command runs.
        case detach
    }

    /// One command as typed, over as many lines as bash needs.
    private func readCommand() async -> PromptInput {
        guard let editor = lineEditor else { return .endOfInput }
        var text = ""
        while true {
            let input = await editor.read(prompt: text.isEmpty ? prompt : Self.continuationPrompt)
            switch input {
            case .endOfFile:
                if text.isEmpty { return .endOfInput }
                text = ""  // Ctrl-D inside a construct drops it, as Ctrl-C does
            case .interrupted:
                text = ""
            case .line(let line):
                if text.isEmpty && line == "~." { return .detach }
                if text.isEmpty && line == "~?" {
                    Terminal.shared.err(EscapeScanner.help)
                    continue
                }
                text += text.isEmpty ? line : "\n" + line
                if text.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" }) {
                    text = ""
                    continue
                }
                if !ShellSyntax.isUnfinished(text) { return .command(text) }
            }
        }
    }

    private func catchUp() async throws -> Ending? {
        let reception = try await withReconnect { try await self.session.receive() }
        let outcome = try await follow(.reception(reception), watchTerminal: true)
        switch outcome {
        case .ended: return nil
        case .detached: return .detached
        case .sessionEnded(let reason): return .sessionEnded(reason)
        }
    }

    private func loadHistory() async throws {
        guard let editor = lineEditor, !restricted else { return }
        let (output, _) = try await quietly(EnterScripts.loadHistory)
        for entry in EnterScripts.historyEntries(output) { editor.addHistory(entry) }
    }

    private func refreshDirectory() async {
        guard !restricted else {
            directory = "(restricted)"
            return
        }
        if let (output, _) = try? await quietly(EnterScripts.whereAmI) {
            directory = EnterScripts.displayDirectory(output)
        }
    }

    /// Completion candidates from the session (on the editor thread: blocks until the
    /// session answers; none if it is busy or unreachable).
    private func completions(line: String, word: String, wordStart: Int) -> [String] {
        guard !restricted else { return [] }
        let kind = EnterScripts.completionKind(line: line, word: word, wordStart: wordStart)
        let asked = kind == .variable ? String(word.dropFirst()) : word
        let answer = BlockingResult<[UInt8]>()
        Task {
            let output = try? await self.quietly(EnterScripts.complete, arguments: [kind.rawValue, asked])
            answer.set(output?.0 ?? [])
        }
        return EnterScripts.candidates(from: answer.wait(), kind: kind)
    }

    // MARK: scripted

    /// Lines from stdin, each command (however many lines it takes) run in turn; the
    /// status is the last command's, or N of `exit N`.
    func runScripted() async throws -> Ending {
        if let ending = try await catchUp() { return ending }
        var reader = LineReader(fd: 0)
        var text = ""
        while let line = reader.next() {
            text += text.isEmpty ? line : "\n" + line
            if text.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" }) { text = ""; continue }
            if ShellSyntax.isUnfinished(text) { continue }
            let command = text
            text = ""
            if let status = Self.leaveStatus(command, lastStatus: lastStatus) { return .left(status: status) }
            if let ending = try await runLine(command, interactive: false) { return ending }
        }
        if !text.isEmpty, let ending = try await runLine(text, interactive: false) { return ending }
        return .left(status: lastStatus)
    }

    // MARK: running a command

    /// `exit`, `exit N`, `logout` typed as a whole command leave the prompt (the session
    /// stays); N, else the last command's status, is tether's exit status.
    static func leaveStatus(_ command: String, lastStatus: Int32) -> Int32? {
        let words = command.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == ";" })
        guard let first = words.first, first == "exit" || first == "logout", words.count <= 2 else { return nil }
        if words.count == 2 {
            guard let status = Int32(words[1]) else { return nil }
            return status & 0xFF
        }
        return lastStatus
    }

    /// Runs `script` as a command of the session and shows its output; nil to go on.
    /// At the prompt the command gets a terminal on the host (`invoke --tty`): the local
    /// one is raw while it runs, so every key — Ctrl-C, Ctrl-D, arrows — is the remote
    /// program's, except the `~.` escape, and window changes are passed on. Restored
    /// before the prompt (or the detach message) comes back.
    private func runLine(_ script: String, interactive: Bool) async throws -> Ending? {
        // A restricted session runs no shell and refuses a terminal: its lines run without.
        let onTerminal = interactive && !restricted
        let terminal = onTerminal ? TerminalMode.request() : nil
        let raw = onTerminal ? TerminalMode.enterRaw(fd: 0) : nil
        defer { raw?.restore() }
        let watcher = interactive ? try TerminalWatcher(interrupts: interrupts!) : nil
        let stdin: StdinSource = watcher.map { .stream($0.typed) } ?? .none
        let invocation: Invocation
        do {
            invocation = try await withReconnect {
                try await self.session.invoke(script, stdin: stdin, terminal: terminal)
            }
        } catch let error as TetherClientError where restricted && error.isRestrictedRefusal {
            // A line the configuration does not allow: said, nothing ran, the prompt goes on.
            watcher?.stop()
            Terminal.shared.err("tether: \(error.message)\n")
            lastStatus = 1
            return nil
        } catch {
            watcher?.stop()
            throw error
        }
        // A resize between the request and the start found no terminal to resize.
        if let asked = terminal?.size, let now = TerminalMode.size(of: 1), now != asked {
            let session = self.session
            Task { try? await session.resize(now) }
        }
        let outcome = try await follow(.invocation(invocation), watcher: watcher)
        switch outcome {
        case .ended(let status):
            lastStatus = status
            return nil
        case .detached:
            return .detached
        case .sessionEnded(let reason):
            return .sessionEnded(reason)
        }
    }

    enum FollowOutcome: Sendable {
        case ended(Int32)
        case detached
        case sessionEnded(String)
    }

    private func follow(_ followed: FollowedOutput, watchTerminal: Bool) async throws -> FollowOutcome {
        let watcher = watchTerminal && interrupts != nil ? try TerminalWatcher(interrupts: interrupts!) : nil
        return try await follow(followed, watcher: watcher)
    }

    /// Prints the followed output to its end (resuming after a lost connection as
    /// `invoke` does) while the watcher turns Ctrl-C into an interrupt and `~.` into
    /// leaving the command running.
    private func follow(_ followed: FollowedOutput, watcher: TerminalWatcher?) async throws -> FollowOutcome {
        let events = AsyncStream<FollowEvent>.makeStream()
        let printing = Task { [self] in
            do {
                events.continuation.yield(.finished(.success(try await self.print(followed))))
            } catch {
                events.continuation.yield(.finished(.failure(error)))
            }
        }
        let interrupted = SharedFlag()
        let watching = Task { [self] in
            guard let watcher else { return }
            for await event in watcher.events {
                switch event {
                case .interrupt:
                    interrupted.set()
                    let session = self.session
                    Task { try? await session.interrupt() }
                case .detach:
                    events.continuation.yield(.detach)
                case .resize:
                    // Only a command with a terminal has a size to change.
                    guard case .invocation = followed, let size = TerminalMode.size(of: 1) else { continue }
                    let session = self.session
                    Task { try? await session.resize(size) }
                }
            }
        }
        defer { watching.cancel() }
        for await event in events.stream {
            switch event {
            case .detach:
                // The output task is left behind: what it has not printed stays on the
                // host, unacknowledged, for the next `enter` or `receive`.
                printing.cancel()
                return .detached
            case .finished(let result):
                watcher?.stop()
                // The terminal echoed ^C where the output stopped; the prompt goes below.
                if interrupted.isSet || (interrupts != nil && !outputEndsLine.isSet) {
                    Terminal.shared.out("\n")
                }
                outputEndsLine.set(true)
                return try result.get()
            }
        }
        return .ended(lastStatus)
    }

    private enum FollowEvent: Sendable {
        case finished(Result<FollowOutcome, Error>)
        case detach
    }

    /// The output loop of one followed command, with invoke's resume rules.
    private func print(_ start: FollowedOutput) async throws -> FollowOutcome {
        var followed = start
        let reconnector = Reconnector(computerName: computerName, pool: pool, timeout: reconnectTimeout,
                                      reconnecting: ReconnectingTargets())
        while true {
            do {
                let sequence = followed.output
                for try await chunk in sequence {
                    // Written before the next record is asked for (and so acknowledged);
                    // if the terminal is gone, the rest stays on the host.
                    do throws(OutputWriteError) {
                        switch chunk {
                        case .stdout(let bytes):
                            try Terminal.shared.write(bytes, to: 1)
                            if let last = bytes.last { outputEndsLine.set(last == 0x0A) }
                        case .stderr(let bytes):
                            try Terminal.shared.write(bytes, to: 2)
                            if let last = bytes.last { outputEndsLine.set(last == 0x0A) }
                        case .stream(let record):
                            try display.show(record, label: nil, output: plainOutput, from: sequence)
                        case .dropped: break
                        }
                    } catch {
                        Terminal.shared.leave(after: error)
                    }
                    if case .dropped(let bytes, let records) = chunk {
                        Terminal.shared.err("tether: \(computerName): \(bytes) bytes of output (\(records) records) were dropped while nobody read them\n")
                    }
                }
                break
            } catch let error as TetherClientError where error.isConnectionLost {
                guard reconnectTimeout > 0 else { throw Reconnector.notResumed(error, computerName: computerName) }
                let (reception, newHost) = try await reconnector.resume(followed.resumePoint, lost: host, cause: error)
                host = newHost
                session = reception.session
                followed = .reception(reception)
            }
        }
        switch followed {
        case .invocation(let invocation):
            return .ended(try await invocation.exitStatus)
        case .reception(let reception):
            if let ended = try await reception.sessionEnded { return .sessionEnded(ended) }
            return .ended(try await reception.exitStatus ?? lastStatus)
        }
    }

    /// Runs one of `EnterScripts` (not shown, not in history) and returns its output.
    private func quietly(_ script: String, arguments: [String] = []) async throws -> ([UInt8], Int32) {
        let invocation = try await withReconnect {
            try await self.session.invoke(script, arguments: arguments, wait: false)
        }
        let (out, _, status) = try await invocation.collect()
        return (out, status)
    }

    /// `body` on the current connection; if that connection turns out lost, once more on
    /// a new one (with the resume loop's patience).
    private func withReconnect<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as TetherClientError where error.isConnectionLost || error.kind == .connection {
            guard reconnectTimeout > 0 else { throw error }
            let deadline = Date().addingTimeInterval(reconnectTimeout)
            Terminal.shared.err("tether: \(computerName): connection lost (\(error.message)); reconnecting…\n")
            while true {
                do {
                    host = try await pool.reconnect(computerName, replacing: host, deadline: deadline)
                    session = host.session(instanceID: session.instanceID, name: session.name)
                    Terminal.shared.err("tether: \(computerName): reconnected\n")
                    return try await body()
                } catch let again as TetherClientError where again.isConnectionLevel && Date() < deadline {
                    try? await Task.sleep(nanoseconds: 50_000_000)
                }
            }
        }
    }
}

/// A boolean set and read from any thread.
final class SharedFlag: Sendable {
    private let lock = Lock()
    nonisolated(unsafe) private var value: Bool  // guarded by lock
    init(initially: Bool = false) { value = initially }
    func set(_ newValue: Bool = true) { lock.withLock { value = newValue } }
    var isSet: Bool { lock.withLock { value } }
}

/// A value produced by an async task and awaited by a plain thread (libedit's completion
/// callback, which must answer synchronously).
final class BlockingResult<T: Sendable>: @unchecked Sendable {
    private let lock = Lock()
    private var value: T?  // guarded by lock
    private let ready = DispatchSemaphore(value: 0)

    func set(_ value: T) {
        lock.withLock { self.value = value }
        ready.signal()
    }

    func wait() -> T {
        ready.wait()
        return lock.withLock { value! }
    }
}

/// Lines of a descriptor (stdin of a scripted `tether enter`), read as they come so a
/// script piped from a slow producer runs line by line.
struct LineReader {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var atEnd = false

    init(fd: Int32) { self.fd = fd }

    mutating func next() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            if atEnd {
                guard !buffer.isEmpty else { return nil }
                defer { buffer.removeAll() }
                return String(decoding: buffer, as: UTF8.self)
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { atEnd = true } else { buffer += chunk[0..<n] }
        }
    }
}

extension TetherClientError {
    /// A restricted session refused the command line (nothing ran).
    var isRestrictedRefusal: Bool {
        if case .remote(.permissionDenied) = kind { return true }
        return false
    }
}
