import Glibc
import TetherIO

/// Supplies the passphrase of an encrypted private key. Never from argv or the environment.
public protocol PassphraseProvider: Sendable {
    /// The passphrase for the key at `keyPath`, or nil to skip that key.
    func passphrase(for keyPath: String) -> String?
}

/// Asks on /dev/tty with echo off, like ssh: "Enter passphrase for key 'PATH': " — or
/// through `$SSH_ASKPASS` as ssh does: always with `SSH_ASKPASS_REQUIRE=force`, first with
/// `prefer`, never with `never`, and by default only when there is no terminal and a
/// display ($DISPLAY or $WAYLAND_DISPLAY). Returns nil when nobody can be asked (the key
/// is then skipped with a note).
/// Answers are remembered per key for the life of the process, so a fan-out to fifty hosts
/// asks once, not fifty times.
public struct TTYPassphraseProvider: PassphraseProvider {
    public init() {}

    private static let lock = Lock()
    nonisolated(unsafe) private static var remembered: [String: String] = [:]

    public func passphrase(for keyPath: String) -> String? {
        Self.lock.withLock {
            if let known = Self.remembered[keyPath] { return known }
            guard let answer = Self.askPerson("Enter passphrase for key '\(keyPath)': ") else { return nil }
            Self.remembered[keyPath] = answer
            return answer
        }
    }

    /// Forgets a passphrase that turned out to be wrong.
    public static func forget(_ keyPath: String) {
        lock.withLock { _ = remembered.removeValue(forKey: keyPath) }
    }

    /// The terminal or `$SSH_ASKPASS`, by ssh's rules. `emptyIsAnswer`: an empty line is an
    /// answer (a password), not "skip" (a key's passphrase).
    static func askPerson(_ prompt: String, echo: Bool = false, emptyIsAnswer: Bool = false) -> String? {
        PersonWait.measure { askPersonNow(prompt, echo: echo, emptyIsAnswer: emptyIsAnswer) }
    }

    private static func askPersonNow(_ prompt: String, echo: Bool, emptyIsAnswer: Bool) -> String? {
        let terminal = { emptyIsAnswer || echo ? TerminalPrompt.ask(prompt, echo: echo) : ask(prompt) }
        let require = Environment.get("SSH_ASKPASS_REQUIRE")?.lowercased()
        if let program = askpassProgram(forTerminal: true), require == "force" || require == "prefer" {
            return askpass(program, prompt, emptyIsAnswer: emptyIsAnswer) ?? (require == "prefer" ? terminal() : nil)
        }
        if let answer = terminal() { return answer }
        if let program = askpassProgram(forTerminal: false) { return askpass(program, prompt, emptyIsAnswer: emptyIsAnswer) }
        return nil
    }

    /// `$SSH_ASKPASS` when ssh would run it: always with SSH_ASKPASS_REQUIRE force or
    /// prefer; without a terminal (`forTerminal` false) also by default when there is a
    /// display; never with `never`.
    static func askpassProgram(forTerminal: Bool) -> String? {
        guard let program = Environment.get("SSH_ASKPASS") else { return nil }
        let require = Environment.get("SSH_ASKPASS_REQUIRE")?.lowercased()
        if require == "force" || require == "prefer" { return program }
        let display = Environment.get("DISPLAY") != nil || Environment.get("WAYLAND_DISPLAY") != nil
        return !forTerminal && require != "never" && display ? program : nil
    }

    /// `$SSH_ASKPASS PROMPT`: its first line of output, if it exits 0.
    private static func askpass(_ program: String, _ prompt: String, emptyIsAnswer: Bool = false) -> String? {
        guard let path = program.hasPrefix("/") ? program : Spawn.findExecutable(program),
              let (status, output, _) = try? OpenSSHConfigQuery.capture(path: path, arguments: [program, prompt]),
              status == .exited(0) else { return nil }
        let line = output.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
        return line.isEmpty && !emptyIsAnswer ? nil : String(decoding: line, as: UTF8.self)
    }

    private static func ask(_ prompt: String) -> String? {
        let tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard tty >= 0 else { return nil }
        defer { close(tty) }
        var saved = termios()
        guard tcgetattr(tty, &saved) == 0 else { return nil }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        quiet.c_lflag |= tcflag_t(ECHONL)
        _ = tcsetattr(tty, TCSAFLUSH, &quiet)
        defer { _ = tcsetattr(tty, TCSAFLUSH, &saved) }
        let promptBytes = Array(prompt.utf8)
        _ = promptBytes.withUnsafeBytes { write(tty, $0.baseAddress, $0.count) }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = read(tty, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { break }
            line.append(byte)
        }
        // Scrub our copy; the String we return is the caller's to keep short-lived.
        defer { for index in line.indices { line[index] = 0 } }
        // An empty answer means "skip this key", as with ssh.
        return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
    }
}
