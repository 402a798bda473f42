import Glibc
import TetherIO

/// A real terminal for interactive tests: one tmux server of its own (its socket in the
/// test's directory) running one command in a pane of a fixed size. Keys go in with
/// send-keys, the screen comes out with capture-pane — what a user would type and see.
/// The pane stays after the command exits (remain-on-exit), so its exit status and last
/// screen can be read.
public final class TmuxPane {
    public let socket: String
    private let tmux: String
    /// Where the command's exit status is written when it ends.
    private let statusPath: String

    /// Starts `command` (argv) with `environment` added, in a `width`×`height` pane.
    ///
    /// remain-on-exit comes from a config file, so it holds before the command starts (set
    /// afterwards, a command that ends at once takes the session with it). The command runs
    /// under a `sh` that writes its exit status to a file: tmux 3.3a can mark a pane dead
    /// (its pty closed) and never record the status (`#{pane_dead_status}` stays empty).
    public init(socket: String, command: [String], environment: [String: String] = [:],
                width: Int = 120, height: Int = 40) throws {
        guard let tmux = Spawn.findExecutable("tmux") else { throw TestSupportError("tmux is not installed (scripts/setup)") }
        self.tmux = tmux
        self.socket = socket
        statusPath = socket + ".status"
        unlink(statusPath)
        let configPath = socket + ".conf"
        try Descriptors.writeFile(configPath, "set-option -g remain-on-exit on\n")
        let env = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        // The trap (a handler, not "ignore", which the command would inherit) keeps the
        // recorder alive through a Ctrl-C meant for the command.
        let recorder = ["/bin/sh", "-c", "trap : INT QUIT; \"$@\"; echo $? > '\(statusPath)'", "sh"]
        // A server with no user config but ours, its own socket. TERM inside is tmux's own
        // (screen / tmux-256color).
        try run(["-f", configPath, "new-session", "-d", "-s", "main", "-x", "\(width)", "-y", "\(height)",
                 "/usr/bin/env"] + env + recorder + command)
    }

    deinit { kill() }

    /// Types `text` literally (no key names).
    public func type(_ text: String) throws {
        try run(["send-keys", "-t", "main", "-l", "--", text])
    }

    /// Sends tmux key names: "Enter", "C-c", "C-d", "Up", "Tab"…
    public func press(_ keys: String...) throws {
        try run(["send-keys", "-t", "main"] + keys)
    }

    /// Types `line` and presses Enter.
    public func typeLine(_ line: String) throws {
        try type(line)
        try press("Enter")
    }

    /// The screen and its scrollback, trailing blanks and blank lines removed.
    public func screen() throws -> String {
        let result = try Processes.run(tmux, ["-S", socket, "capture-pane", "-p", "-J", "-t", "main", "-S", "-2000"], timeout: 10)
        // Trailing blanks of each line dropped: a prompt's "$ " reads as "$".
        var lines = result.stdoutText.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            String(line[..<(line.lastIndex(where: { $0 != " " }).map { line.index(after: $0) } ?? line.startIndex)])
        }
        while let last = lines.last, last.trimmingWhitespace().isEmpty { lines.removeLast() }
        return lines.joined(separator: "\n")
    }

    /// The visible screen with its colours and attributes as escape sequences (`capture-pane -e`).
    public func screenWithEscapes() throws -> String {
        try Processes.run(tmux, ["-S", socket, "capture-pane", "-p", "-e", "-t", "main"], timeout: 10).stdoutText
    }

    /// The last non-blank line of the screen (where the prompt and the cursor are).
    public func lastLine() throws -> String {
        try screen().split(separator: "\n").last.map(String.init) ?? ""
    }

    /// Waits until `condition(screen)` holds; returns that screen (test-only polling of
    /// another process's output).
    @discardableResult
    public func waitFor(_ what: String, timeout: Double = 20, _ condition: (String) -> Bool) throws -> String {
        let deadline = Deadline(secondsFromNow: timeout)
        var last = ""
        while true {
            last = try screen()
            if condition(last) { return last }
            guard !deadline.hasPassed else {
                throw TestSupportError("\(what) did not appear within \(timeout) s; the screen:\n\(last)")
            }
            usleep(30_000)
        }
    }

    /// Waits until the screen contains `text`.
    @discardableResult
    public func waitFor(text: String, timeout: Double = 20) throws -> String {
        try waitFor("\"\(text)\"", timeout: timeout) { $0.contains(text) }
    }

    /// The command's exit status once it has exited, else nil.
    public func exitStatus() throws -> Int32? {
        guard let bytes = Descriptors.readFile(statusPath) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
        return text.isEmpty ? nil : Int32(text)
    }

    /// Waits for the command to exit; its status.
    public func waitForExit(timeout: Double = 20) throws -> Int32 {
        let deadline = Deadline(secondsFromNow: timeout)
        while true {
            if let status = try exitStatus() { return status }
            guard !deadline.hasPassed else { throw TestSupportError("the command in tmux did not exit within \(timeout) s; the screen:\n\(try screen())") }
            usleep(30_000)
        }
    }

    /// Changes the window's size, as a user dragging the terminal would (the program in the
    /// pane gets SIGWINCH).
    public func resize(width: Int, height: Int) throws {
        try run(["resize-window", "-t", "main", "-x", "\(width)", "-y", "\(height)"])
    }

    /// Ends the tmux server (and whatever still runs in it).
    public func kill() {
        _ = try? Processes.run(tmux, ["-S", socket, "kill-server"], timeout: 10)
    }

    private func run(_ arguments: [String]) throws {
        let result = try Processes.run(tmux, ["-S", socket] + arguments, timeout: 10)
        guard result.status == .exited(0) else {
            throw TestSupportError("tmux \(arguments.joined(separator: " ")): \(result.stderrText)")
        }
    }
}
