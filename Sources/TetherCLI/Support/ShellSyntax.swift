import CTetherPosix
import Glibc
import TetherIO

/// Whether typed input is a whole bash command or needs more lines (`tether enter`'s
/// continuation prompt). bash decides, not a parser of ours: the text goes to a local
/// `bash -n` (parse only, run nothing) on its stdin — never in argv, where other users
/// could read it — and input is unfinished if bash stopped at the end of it (an open
/// quote or `$(`, `if` without `fi`, a here-document without its delimiter). Any other
/// syntax error is the session's to report, so such input is sent as typed. A trailing
/// unescaped `\` is checked here: bash -n accepts it (the continuation just meets the
/// end of the input). Asking the local bash costs one fork per line and no round trip;
/// a session whose shell options change the grammar (extglob) is still parsed right,
/// because only "unexpected end of input" counts as unfinished.
enum ShellSyntax {
    static func isUnfinished(_ text: String) -> Bool {
        if endsWithLineContinuation(text) { return true }
        guard let bash = Spawn.findExecutable("bash") else { return false }
        return bashStopsAtEnd(text, bash: bash)
    }

    /// An odd number of `\` at the very end.
    static func endsWithLineContinuation(_ text: String) -> Bool {
        var count = 0
        for byte in text.utf8.reversed() {
            guard byte == UInt8(ascii: "\\") else { break }
            count += 1
        }
        return count % 2 == 1
    }

    /// What bash -n says when it meets the end of the input inside a construct (LC_ALL=C).
    static let unfinishedMarks = ["unexpected end of file", "unexpected EOF", "delimited by end-of-file"]

    private static func bashStopsAtEnd(_ text: String, bash: String) -> Bool {
        var input: [Int32] = [0, 0]
        var errors: [Int32] = [0, 0]
        guard tether_pipe2(&input, O_CLOEXEC) == 0 else { return false }
        guard tether_pipe2(&errors, O_CLOEXEC) == 0 else {
            close(input[0]); close(input[1])
            return false
        }
        var options = Spawn.Options()
        options.fileActions = [0: input[0], 2: errors[1]]
        options.devNull = [1]
        options.environment = ["LC_ALL=C", "PATH=/usr/bin:/bin"]
        let pid = try? Spawn.spawn(path: bash, arguments: ["bash", "--norc", "--noprofile", "-n"], options: options)
        close(input[0])
        close(errors[1])
        defer { close(errors[0]) }
        guard let pid else {
            close(input[1])
            return false
        }
        // bash reads while we write; a write error (bash gone early) just ends the input.
        let bytes = Array(text.utf8) + [0x0A]
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(input[1], $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            offset += n
        }
        close(input[1])
        var said: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(errors[0], &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if said.count < 64 * 1024 { said += buffer[0..<n] }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let message = String(decoding: said, as: UTF8.self)
        return unfinishedMarks.contains { message.contains($0) }
    }
}
