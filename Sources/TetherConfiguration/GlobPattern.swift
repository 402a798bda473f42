import Glibc

/// An ARGPATTERN of a `Command` rule: a shell glob (`*`, `?`, `[…]`, `\` quoting the next
/// character) matched against one whole argument, byte for byte (fnmatch(3) in the C
/// locale, no flags: `*` matches `/`, a leading `.` and a leading `-` too — write
/// `[!-]*` to keep options out).
public enum GlobPattern {
    public static func matches(_ pattern: String, _ argument: String) -> Bool {
        fnmatch(pattern, argument, 0) == 0
    }

    /// Why `pattern` can never match what a user may send, or is not what it seems.
    public static func problem(with pattern: String) -> String? {
        if pattern == "**" {
            return "** admits any further arguments and must be the last pattern"
        }
        if pattern.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
            return "contains a control character, which no argument may contain: it can never match"
        }
        var bytes = Array(pattern.utf8)[...]
        while let byte = bytes.popFirst() {
            switch byte {
            case 0x5c:  // backslash
                if bytes.isEmpty { return "ends in a lone \\, which quotes nothing" }
                bytes = bytes.dropFirst()
            case 0x5b:  // [
                var rest = bytes
                if rest.first == 0x21 || rest.first == 0x5e { rest = rest.dropFirst() }  // ! or ^
                if rest.first == 0x5d { rest = rest.dropFirst() }  // a leading ] is a member
                guard let close = rest.firstIndex(of: 0x5d) else {
                    return "has a [ with no closing ]: write \\[ for a literal bracket"
                }
                bytes = bytes[(close + 1)...]
            default:
                break
            }
        }
        return nil
    }
}
