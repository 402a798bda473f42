/// The words of one restricted command line, split the way a shell would split them if it
/// expanded nothing: spaces and tabs separate words, `'…'` is literal, `"…"` is literal
/// too. Everything a shell would *interpret* — operators, redirections, expansions,
/// globbing, `~`, comments, history, assignments — is refused rather than passed on as
/// text, so a line means what a shell user reads in it or it does not run at all.
public enum CommandLineWords {
    /// The most bytes a command line (with its arguments) may have, and the most words.
    public static let maxBytes = 8192
    public static let maxWords = 256

    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Unquoted, each of these means something to a shell.
    static let shellCharacters: [UInt8: String] = [
        0x3b: "; (a command separator)", 0x26: "& (background or &&)", 0x7c: "| (a pipe or ||)",
        0x3c: "< (a redirection)", 0x3e: "> (a redirection)", 0x28: "( (a subshell)", 0x29: ") (a subshell)",
        0x24: "$ (an expansion)", 0x60: "` (command substitution)", 0x5c: "\\ (an escape)",
        0x2a: "* (a glob)", 0x3f: "? (a glob)", 0x5b: "[ (a glob)", 0x5d: "] (a glob)",
        0x7b: "{ (brace expansion)", 0x7d: "} (brace expansion)", 0x7e: "~ (home directory expansion)",
        0x23: "# (a comment)", 0x21: "! (history or negation)",
    ]
    /// Inside double quotes a shell still expands these.
    static let doubleQuoteCharacters: [UInt8: String] = [
        0x24: "$ (an expansion)", 0x60: "` (command substitution)", 0x5c: "\\ (an escape)", 0x21: "! (history)",
    ]

    /// Splits `line`; `extra` (the invoke's arguments) are appended as words as they are —
    /// no shell ever sees them — after the same NUL and size checks.
    public static func split(_ line: String, extra: [String] = []) -> Result<[String], Refusal> {
        let total = line.utf8.count + extra.reduce(0) { $0 + $1.utf8.count + 1 }
        if total > maxBytes {
            return .failure(Refusal(message: "the command line is \(total) bytes; at most \(maxBytes) are accepted"))
        }
        var words: [[UInt8]] = []
        var current: [UInt8] = []
        var inWord = false
        enum Quote { case none, single, double }
        var quote = Quote.none
        for (offset, byte) in line.utf8.enumerated() {
            let position = offset + 1
            if byte == 0 {
                return .failure(Refusal(message: "a NUL byte at byte \(position): no argument can carry one"))
            }
            if (byte < 0x20 && byte != 0x09) || byte == 0x7f {
                let name = byte == 0x0a ? "a newline (one command per line)" : "control character 0x\(String(byte, radix: 16))"
                return .failure(Refusal(message: "\(name) at byte \(position) is not accepted"))
            }
            switch quote {
            case .single:
                if byte == 0x27 { quote = .none } else { current.append(byte) }
                continue
            case .double:
                if byte == 0x22 {
                    quote = .none
                } else if let what = doubleQuoteCharacters[byte] {
                    return .failure(shellSyntax(what, position, quoted: true))
                } else {
                    current.append(byte)
                }
                continue
            case .none:
                break
            }
            switch byte {
            case 0x20, 0x09:
                if inWord {
                    words.append(current)
                    current = []
                    inWord = false
                }
            case 0x27:
                quote = .single
                inWord = true
            case 0x22:
                quote = .double
                inWord = true
            default:
                if let what = shellCharacters[byte] {
                    return .failure(shellSyntax(what, position, quoted: false))
                }
                if byte == 0x3d && words.isEmpty {  // = in the first word
                    return .failure(Refusal(message: "\"=\" in the program name at byte \(position): environment assignments are not accepted (the environment is the configuration's)"))
                }
                current.append(byte)
                inWord = true
            }
        }
        if quote != .none {
            return .failure(Refusal(message: "an unterminated \(quote == .single ? "'" : "\"") quote"))
        }
        if inWord { words.append(current) }
        for (index, argument) in extra.enumerated() where argument.utf8.contains(0) {
            return .failure(Refusal(message: "argument \(index + 1) contains a NUL byte: no argument can carry one"))
        }
        var result = words.map { String(decoding: $0, as: UTF8.self) }
        result += extra
        if result.isEmpty {
            return .failure(Refusal(message: "an empty command line: name a program"))
        }
        if result.count > maxWords {
            return .failure(Refusal(message: "\(result.count) words; at most \(maxWords) are accepted"))
        }
        return .success(result)
    }

    private static func shellSyntax(_ what: String, _ position: Int, quoted: Bool) -> Refusal {
        let place = quoted ? " inside double quotes" : ""
        return Refusal(message: "\(what) at byte \(position)\(place): shell syntax is not available in a restricted session (commands run without a shell; quote it with '…' to mean the character itself)")
    }
}
