/// The small bash texts `tether enter` runs in the session besides what is typed: where
/// the shell is (for the prompt), the session's history, completion candidates. They run
/// as ordinary commands of the session (no protocol of their own, nothing for plain
/// `invoke` to pay), each robust against what a user may have done to the shell: every
/// word is `\builtin` or `\command` (no alias or function stands in), and each ends with
/// status 0 even under `set -e`/`pipefail`.
///
/// History lives in the session's work directory (`$__tether_w`, the runspace's 0700
/// directory, removed with the session), one entry per line with `\` and newline escaped
/// (`\\`, `\n`), so a multi-line `for` loop is one entry. Each typed line appends itself
/// as the first statement of its own command (on its first line, so bash's line numbers
/// stay the user's): the entry is on the host even if the client detaches or vanishes
/// while the command runs, and a client entering from another machine recalls it.
enum EnterScripts {
    static let historyFile = #""$__tether_w/enter-history""#
    /// Entries loaded on entering (the file itself keeps everything).
    static let historyLoaded = 1000

    /// Prints `$HOME`, NUL, `$PWD`: the prompt shows `~` for the home directory as bash does.
    static let whereAmI = #"\builtin printf '%s\0%s' "${HOME-}" "$PWD""#

    /// The last entries of the history file (escaped form, one per line).
    static let loadHistory = #"{ \command tail -n "# + "\(historyLoaded) " + historyFile + #" 2>/dev/null || :; }"#

    /// `line` as the session runs it: first appending itself to the history file.
    static func command(for line: String) -> String {
        #"{ \builtin printf '%s\n' "# + quote(escapeHistoryEntry(line)) + " >>" + historyFile + #"; } 2>/dev/null || :; "# + line
    }

    /// Candidates for completing "$2" of kind "$1": `c` a command name (aliases,
    /// functions, builtins, keywords, programs on PATH, and directories), `v` a variable
    /// name, `f` a file name. Directories come with a trailing `/`.
    static let complete = #"""
    case $1 in
    c) { \builtin compgen -c -- "$2"; \builtin compgen -d -S / -- "$2"; } 2>/dev/null || : ;;
    v) \builtin compgen -v -- "$2" 2>/dev/null || : ;;
    *) { \builtin compgen -d -S / -- "$2"; \builtin compgen -f -- "$2"; } 2>/dev/null || : ;;
    esac
    """#

    enum CompletionKind: String {
        case command = "c", variable = "v", file = "f"
    }

    /// What kind of word `word` (starting at `wordStart` in `line`) is: a variable after
    /// `$`, a file if it has a `/` or is not in command position, else a command.
    static func completionKind(line: String, word: String, wordStart: Int) -> CompletionKind {
        if word.hasPrefix("$") { return .variable }
        if word.contains("/") { return .file }
        let before = line.utf8.prefix(wordStart)
        // Command position: nothing but blanks since the start or since ; | & ( or a newline.
        for byte in before.reversed() {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"): continue
            case UInt8(ascii: ";"), UInt8(ascii: "|"), UInt8(ascii: "&"), UInt8(ascii: "("), 0x0A: return .command
            default: return .file
            }
        }
        return .command
    }

    /// The session's answer to `complete` turned into candidates for `word`: unique,
    /// sorted, a directory once (with its `/`), variables with their `$` back.
    static func candidates(from output: [UInt8], kind: CompletionKind) -> [String] {
        let names = String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
        var seen = Set<String>()
        let directories = Set(names.filter { $0.hasSuffix("/") }.map { String($0.dropLast()) })
        var result: [String] = []
        for name in names where !directories.contains(name) {
            let candidate = kind == .variable ? "$" + name : name
            if seen.insert(candidate).inserted { result.append(candidate) }
        }
        return result.sorted()
    }

    static func escapeHistoryEntry(_ entry: String) -> String {
        var out = ""
        for character in entry {
            switch character {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    static func unescapeHistoryEntry(_ line: Substring) -> String {
        var out = ""
        var escaped = false
        for character in line {
            if escaped {
                out.append(character == "n" ? "\n" : character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// The entries of `loadHistory`'s output, oldest first.
    static func historyEntries(_ output: [UInt8]) -> [String] {
        String(decoding: output, as: UTF8.self).split(separator: "\n").map(unescapeHistoryEntry)
    }

    /// The prompt's directory: `~` for the home directory and below it, as bash shows it.
    static func displayDirectory(_ output: [UInt8]) -> String {
        let parts = output.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return "?" }
        let home = String(decoding: parts[0], as: UTF8.self)
        let cwd = String(decoding: parts[1], as: UTF8.self)
        if !home.isEmpty && home != "/" {
            if cwd == home { return "~" }
            if cwd.hasPrefix(home + "/") { return "~" + cwd.dropFirst(home.count) }
        }
        return cwd
    }

    /// Single-quotes `text` for bash (a `'` becomes `'\''`).
    static func quote(_ text: String) -> String {
        "'" + text.replacing("'", with: #"'\''"#) + "'"
    }
}
