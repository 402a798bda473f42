/// OpenSSH host patterns: `*` and `?` wildcards, `!` negation, lists of patterns.
enum HostPattern {
    /// Glob match of `text` against `pattern` (`*` any run, `?` one character),
    /// ignoring ASCII case as host names do.
    static func matches(_ text: String, pattern: String) -> Bool {
        let t = Array(text.lowercased().utf8)
        let p = Array(pattern.lowercased().utf8)
        // Iterative glob with single backtrack point: linear in practice, no recursion.
        var ti = 0, pi = 0
        var starPi = -1, starTi = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) {
                ti += 1; pi += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                starPi = pi; starTi = ti; pi += 1
            } else if starPi >= 0 {
                pi = starPi + 1; starTi += 1; ti = starTi
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    /// A list matches when some positive pattern matches and no negated one does
    /// (a negated match vetoes the whole list, as in OpenSSH's match_hostname).
    static func listMatches(_ text: String, patterns: [String]) -> Bool {
        var positive = false
        for pattern in patterns {
            if pattern.hasPrefix("!") {
                if matches(text, pattern: String(pattern.dropFirst())) { return false }
            } else if matches(text, pattern: pattern) {
                positive = true
            }
        }
        return positive
    }
}
