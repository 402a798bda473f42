import CLibEdit
import CTetherPosix
import Dispatch
import Glibc
import TetherIO

/// The prompt of `tether enter`: libedit's readline (editing keys, history recall,
/// completion lists), run on a thread of its own because readline blocks. History is
/// kept in memory here only for recall; where it lives is the session's business
/// (`EnterScripts`). Completion asks `completer`, which runs on the editor thread and may
/// block (it asks the session).
final class LineEditor: @unchecked Sendable {
    // @unchecked: readline runs only on the editor thread; the async side hands it one
    // request at a time and touches history only while no request is pending.

    enum Input: Sendable, Equatable {
        case line(String)
        /// Ctrl-C: the line typed so far is dropped.
        case interrupted
        /// Ctrl-D on an empty line.
        case endOfFile
    }

    /// Candidates for `word` (the text before the cursor, from the last word break) in
    /// `line`; `wordStart` is its offset in the line. Directories end in `/`.
    typealias Completer = @Sendable (_ line: String, _ word: String, _ wordStart: Int) -> [String]

    private let lock = Lock()
    private var pending: (prompt: String, done: CheckedContinuation<Input, Never>)?  // guarded by lock
    private let wake = DispatchSemaphore(value: 0)
    /// Every Ctrl-C writes a byte here (see `InterruptPipe`).
    let interrupts: InterruptPipe

    init(interrupts: InterruptPipe, completer: @escaping Completer) throws {
        self.interrupts = interrupts
        LineEditor.completer = completer
        let ready = DispatchSemaphore(value: 0)
        let writeEnd = interrupts.writeEnd
        try BackgroundThread.start { [self] in
            _ = tether_prompt_catch_interrupts(writeEnd)
            _ = tether_prompt_catch_resizes()
            tether_editline_setup { text, start, _ in LineEditor.complete(text, start) }
            tether_editline_set_word_breaks()
            ready.signal()
            serve()
        }
        ready.wait()
    }

    /// Shows `prompt` and returns what was typed.
    func read(prompt: String) async -> Input {
        await withCheckedContinuation { done in
            lock.withLock { pending = (prompt, done) }
            wake.signal()
        }
    }

    /// Makes `line` recallable with Up (call between reads).
    func addHistory(_ line: String) {
        add_history(line)
    }

    private func serve() {
        while true {
            wake.wait()
            guard let request = lock.withLock({ () -> (prompt: String, done: CheckedContinuation<Input, Never>)? in
                defer { pending = nil }
                return pending
            }) else { continue }
            errno = 0
            let typed = readline(request.prompt)
            let interrupted = errno == EINTR
            if let typed {
                request.done.resume(returning: .line(String(cString: typed)))
                free(typed)
            } else if interrupted {
                // The prompt stays where it was; a new one goes on the next line, as in bash.
                Terminal.shared.out("^C\n")
                request.done.resume(returning: .interrupted)
            } else {
                request.done.resume(returning: .endOfFile)
            }
        }
    }

    // MARK: completion (C callbacks: no context pointer, so the state is static)

    nonisolated(unsafe) private static var completer: Completer?
    /// The candidates of the completion in progress (editor thread only).
    nonisolated(unsafe) private static var candidates: [String] = []

    private static func complete(_ text: UnsafePointer<CChar>?, _ start: Int32) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        tether_editline_set_no_default_completion()
        guard let text, let completer else { return nil }
        let word = String(cString: text)
        let line = String(cString: tether_editline_buffer())
        candidates = completer(line, word, Int(start))
        guard !candidates.isEmpty else { return nil }
        // No space after a directory: the next Tab goes on inside it.
        let onlyDirectory = candidates.count == 1 && candidates[0].hasSuffix("/")
        tether_editline_set_append_character(onlyDirectory ? 0 : 0x20)
        return rl_completion_matches(text) { text, state in
            let index = Int(state)
            guard index < LineEditor.candidates.count else { return nil }
            return strdup(LineEditor.candidates[index])
        }
    }
}

/// A non-blocking pipe that the signal handlers write one byte to per Ctrl-C ('i') and
/// per window change ('w'), so a thread can wait for them with poll(2) like for any
/// other input.
final class InterruptPipe: Sendable {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        guard tether_pipe2(&fds, O_CLOEXEC | O_NONBLOCK) == 0 else { throw SystemError.last("pipe2") }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    /// Forgets what was noted so far (Ctrl-Cs the prompt handled, resizes while no command
    /// had a terminal); returns how many.
    @discardableResult
    func drain() -> Int {
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let n = read(readEnd, &buffer, buffer.count)
            if n > 0 { total += n; continue }
            if n < 0 && errno == EINTR { continue }
            return total
        }
    }
}
