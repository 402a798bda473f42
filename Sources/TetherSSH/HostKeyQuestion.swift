import Glibc
import TetherIO

/// Asks a person whether to trust a host key nobody has seen (StrictHostKeyChecking ask,
/// ssh's default). Answers: true = trust and record it, false = refuse, nil = nobody to
/// ask (the connection then fails, saying so).
public protocol HostKeyQuestion: Sendable {
    func confirm(_ question: String, fingerprint: String) -> Bool?
}

/// ssh's question on /dev/tty: "yes", "no", or the fingerprint itself (which then must
/// match). Nil when there is no terminal.
public struct TTYHostKeyQuestion: HostKeyQuestion {
    public init() {}

    public func confirm(_ question: String, fingerprint: String) -> Bool? {
        var prompt = question
        while true {
            guard let answer = PersonWait.measure({ TerminalPrompt.ask(prompt, echo: true) }) else { return nil }
            switch answer.trimmingWhitespace().lowercased() {
            case "yes": return true
            case "no": return false
            case let typed where typed == fingerprint.lowercased(): return true
            default: prompt = "Please type 'yes', 'no' or the fingerprint: "
            }
        }
    }
}

/// One line read from /dev/tty after a prompt, with echo off when asked (passphrases).
enum TerminalPrompt {
    static func ask(_ prompt: String, echo: Bool) -> String? {
        let tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard tty >= 0 else { return nil }
        defer { close(tty) }
        var saved = termios()
        let isTerminal = tcgetattr(tty, &saved) == 0
        guard isTerminal else { return nil }
        if !echo {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            quiet.c_lflag |= tcflag_t(ECHONL)
            _ = tcsetattr(tty, TCSAFLUSH, &quiet)
        }
        defer { if !echo { _ = tcsetattr(tty, TCSAFLUSH, &saved) } }
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
        defer { for index in line.indices { line[index] = 0 } }
        return String(decoding: line, as: UTF8.self)
    }
}
