import Glibc
import TetherIO

/// One line of an ssh config file: keyword (lower-cased) and its arguments.
struct SSHConfigLine {
    var file: String
    var number: Int
    var keyword: String
    var arguments: [String]
    /// Everything after the keyword (and its `=`), unsplit and unquoted: ProxyCommand
    /// takes the rest of the line as one shell command, as OpenSSH does.
    var rest = ""

    var location: String { "\(file):\(number)" }

    /// Splits "Keyword value", "Keyword=value", "Keyword "quoted value"". Nil for blank
    /// lines and comments.
    static func parse(_ text: Substring, file: String, number: Int) throws -> SSHConfigLine? {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quoted = false
        for character in text {
            if quoted {
                if character == "\"" { quoted = false } else { current.append(character) }
                continue
            }
            switch character {
            case "\"":
                quoted = true
                inWord = true
            case " ", "\t", "\r":
                if inWord { words.append(current); current = ""; inWord = false }
            case "=" where words.isEmpty && !current.isEmpty:
                // "Keyword=value": the first '=' ends the keyword.
                words.append(current); current = ""; inWord = false
            case "#" where !inWord:
                // A word starting with '#' starts a comment.
                if inWord { words.append(current) }
                return line(words, file: file, number: number)
            default:
                current.append(character)
                inWord = true
            }
        }
        if quoted {
            throw SSHError(.configuration, host: "", "\(file):\(number): unterminated quote")
        }
        if inWord { words.append(current) }
        guard var parsed = line(words, file: file, number: number) else { return nil }
        parsed.rest = restOfLine(text)
        return parsed
    }

    /// The text after the keyword: leading blanks, the keyword, blanks, one optional `=`,
    /// blanks are skipped; trailing blanks dropped.
    private static func restOfLine(_ text: Substring) -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        var rest: Substring = text.drop(while: blank)
        rest = rest.drop(while: { !blank($0) && $0 != "=" })
        rest = rest.drop(while: blank)
        if rest.first == "=" { rest = rest.dropFirst().drop(while: blank) }
        while let last = rest.last, blank(last) { rest = rest.dropLast() }
        return String(rest)
    }

    private static func line(_ words: [String], file: String, number: Int) -> SSHConfigLine? {
        var words = words
        // "Keyword = value" leaves a lone "=" as the first argument.
        if words.count > 1 && words[1] == "=" { words.remove(at: 1) }
        if words.count > 1 && words[1].hasPrefix("=") { words[1].removeFirst() }
        guard let keyword = words.first, !keyword.isEmpty else { return nil }
        return SSHConfigLine(file: file, number: number, keyword: keyword.lowercased(),
                             arguments: Array(words.dropFirst()).filter { !$0.isEmpty })
    }
}

/// Reads a config file's text; nil when it doesn't exist.
enum ConfigFileReader {
    static func read(_ path: String) throws -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw SSHError(.configuration, host: "", "cannot read ssh config \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        return try readAll(fd, path: path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The whole contents of a regular file (or nil if it's a directory).
    static func readAll(_ fd: Int32, path: String) throws -> [UInt8]? {
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { return nil }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw SSHError(.configuration, host: "", "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return bytes
    }

    /// Paths matching a shell glob, sorted; none when nothing matches.
    static func glob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { index in
            result.gl_pathv[index].map { String(cString: $0) }
        }
    }
}
