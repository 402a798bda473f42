/// Reads one configuration file's text, sshd_config style: one `Keyword value…` per line,
/// keywords case-insensitive, `#` starts a comment line, a value with spaces in double
/// quotes. Pure: what the text says and whether it is consistent; what exists on disk is
/// `ConfigurationFileChecks`' job.
public enum ConfigurationParser {
    /// Every keyword, in the case the docs write it.
    public static let keywords = [
        "Description", "Kind", "Enabled", "AllowUsers", "AllowGroups", "DenyUsers", "DenyGroups",
        "Environment", "WorkingDirectory", "StartupScript", "IdleTimeout", "MaxIdleTimeout",
        "OutputBuffering", "MaxSessionsPerUser", "Transcript", "Command",
    ]

    /// Names a configuration file may give (`NAME.conf`): what a client types after
    /// `--configuration`, so nothing a shell or a path would read specially.
    public static func problem(withName name: String) -> String? {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == 0x2d || byte == 0x5f || byte == 0x2e
        }
        guard !name.isEmpty, name.utf8.count <= 64, allowed, !name.hasPrefix(".") else {
            return "invalid configuration name \"\(name)\": letters, digits, '-', '_', '.' (not first), at most 64"
        }
        return nil
    }

    public static func parse(_ text: String, name: String, file: String) -> (SessionConfiguration, [ConfigurationDiagnostic]) {
        var configuration = SessionConfiguration(name: name)
        configuration.file = file
        var diagnostics: [ConfigurationDiagnostic] = []
        var seen: [String: Int] = [:]
        var kindLine = 0
        var shellOnly: [(keyword: String, line: Int)] = []
        var commandLines: [Int] = []
        var accessGiven = false
        let fileName = String(file.split(separator: "/").last ?? Substring(file))

        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            func fail(_ message: String) {
                diagnostics.append(ConfigurationDiagnostic(file: file, line: number, message: message))
            }
            let words: [String]
            switch splitWords(rawLine) {
            case .failure(let problem):
                fail(problem.message)
                continue
            case .success(let found):
                words = found
            }
            guard let first = words.first else { continue }
            let values = Array(words.dropFirst())
            guard let keyword = keywords.first(where: { $0.lowercased() == first.lowercased() }) else {
                let suggestion = suggestion(for: first).map { " (did you mean \($0)?)" } ?? ""
                fail("unknown keyword \"\(first)\"\(suggestion)")
                continue
            }
            let repeatable = ["AllowUsers", "AllowGroups", "DenyUsers", "DenyGroups", "Environment", "Command"]
            if !repeatable.contains(keyword) {
                if let earlier = seen[keyword] {
                    fail("\(keyword) is already set on line \(earlier)")
                    continue
                }
                seen[keyword] = number
            }
            func single() -> String? {
                guard values.count == 1 else {
                    fail(values.isEmpty ? "\(keyword) needs a value" : "\(keyword) takes one value, not \(values.count) (quote a value with spaces)")
                    return nil
                }
                return values[0]
            }
            func yesNo() -> Bool? {
                guard let value = single() else { return nil }
                switch value.lowercased() {
                case "yes": return true
                case "no": return false
                default:
                    fail("\(keyword) must be yes or no, not \"\(value)\"")
                    return nil
                }
            }
            switch keyword {
            case "Description":
                guard !values.isEmpty else { fail("Description needs a value"); break }
                configuration.description = values.joined(separator: " ")
            case "Kind":
                guard let value = single() else { break }
                guard let kind = SessionConfiguration.Kind(rawValue: value.lowercased()) else {
                    fail("Kind must be shell or restricted, not \"\(value)\"")
                    break
                }
                configuration.kind = kind
                kindLine = number
            case "Enabled":
                if let value = yesNo() { configuration.enabled = value }
            case "AllowUsers", "AllowGroups", "DenyUsers", "DenyGroups":
                guard !values.isEmpty else { fail("\(keyword) needs at least one name or pattern"); break }
                for value in values where value.contains("@") {
                    fail("\(keyword) \(value): user@host patterns are not supported (Tether sees no client host it could trust)")
                }
                switch keyword {
                case "AllowUsers": configuration.access.allowUsers += values; accessGiven = true
                case "AllowGroups": configuration.access.allowGroups += values; accessGiven = true
                case "DenyUsers": configuration.access.denyUsers += values
                default: configuration.access.denyGroups += values
                }
            case "Environment":
                guard !values.isEmpty else { fail("Environment needs NAME=VALUE"); break }
                for value in values {
                    guard let equals = value.firstIndex(of: "=") else {
                        fail("Environment \(value): expected NAME=VALUE")
                        continue
                    }
                    let variable = String(value[..<equals])
                    guard isVariableName(variable) else {
                        fail("Environment \(value): \"\(variable)\" is not a variable name (letters, digits, '_', not starting with a digit)")
                        continue
                    }
                    if configuration.environment.contains(where: { $0.name == variable }) {
                        fail("Environment \(variable) is set twice")
                        continue
                    }
                    configuration.environment.append(EnvironmentSetting(name: variable, value: String(value[value.index(after: equals)...])))
                }
            case "WorkingDirectory":
                guard let value = single() else { break }
                guard value.hasPrefix("/") || value.hasPrefix("%h") else {
                    fail("WorkingDirectory must be an absolute path (or start with %h, the user's home), not \"\(value)\"")
                    break
                }
                configuration.workingDirectory = value
            case "StartupScript":
                guard let value = single() else { break }
                guard value.hasPrefix("/") else { fail("StartupScript must be an absolute path, not \"\(value)\""); break }
                configuration.startupScript = value
                shellOnly.append((keyword, number))
            case "IdleTimeout", "MaxIdleTimeout":
                guard let value = single() else { break }
                guard let seconds = parseDuration(value), seconds > 0 else {
                    fail("\(keyword) must be a time like 90, 30m, 2h or 1h30m (s, m, h, d, w), not \"\(value)\"")
                    break
                }
                if keyword == "IdleTimeout" { configuration.idleTimeout = seconds } else { configuration.maxIdleTimeout = seconds }
            case "OutputBuffering":
                guard let value = single() else { break }
                guard value == "block" || value == "drop" else { fail("OutputBuffering must be block or drop, not \"\(value)\""); break }
                configuration.outputBuffering = value
            case "MaxSessionsPerUser":
                guard let value = single() else { break }
                guard let count = Int(value), count >= 1 else {
                    fail("MaxSessionsPerUser must be a whole number ≥ 1, not \"\(value)\" (Enabled no takes a configuration away)")
                    break
                }
                configuration.maxSessionsPerUser = count
            case "Transcript":
                if let value = yesNo() { configuration.transcript = value }
            case "Command":
                commandLines.append(number)
                guard let path = values.first else { fail("Command needs an absolute PATH, then one pattern per argument"); break }
                guard path.hasPrefix("/"), !path.hasSuffix("/") else {
                    fail("Command \(path): the program must be given by its absolute path")
                    break
                }
                guard !path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) else {
                    fail("Command \(path): the path must not contain . or .. components")
                    break
                }
                var patterns = Array(values.dropFirst())
                var admitsMore = false
                if patterns.last == "**" {
                    patterns.removeLast()
                    admitsMore = true
                }
                var valid = true
                for (position, pattern) in patterns.enumerated() {
                    if let problem = GlobPattern.problem(with: pattern) {
                        fail("Command \(path), argument pattern \(position + 1) \"\(pattern)\": \(problem)")
                        valid = false
                    }
                }
                if valid {
                    configuration.commands.append(CommandRule(path: path, patterns: patterns, admitsMore: admitsMore,
                                                              location: "\(fileName):\(number)"))
                }
            default:
                break
            }
        }

        func failFile(_ line: Int, _ message: String) {
            diagnostics.append(ConfigurationDiagnostic(file: file, line: line, message: message))
        }
        switch configuration.kind {
        case .shell:
            for line in commandLines {
                failFile(line, "Command rules are for Kind restricted; a shell configuration runs anything (Kind is \(kindLine > 0 ? "shell on line \(kindLine)" : "shell by default"))")
            }
        case .restricted:
            for (keyword, line) in shellOnly {
                failFile(line, "\(keyword) is for Kind shell: a restricted configuration runs no shell")
            }
            if configuration.commands.isEmpty && commandLines.isEmpty {
                failFile(kindLine, "Kind restricted without any Command rule allows nothing; add Command PATH [ARGPATTERN…]")
            }
            if !accessGiven && configuration.enabled {
                failFile(kindLine, "Kind restricted without AllowUsers or AllowGroups is for nobody; name who may use it")
            }
            for setting in configuration.environment where setting.name.hasPrefix("LD_") || setting.name == "PATH" {
                failFile(0, "Environment \(setting.name): a restricted configuration's PATH is fixed and LD_* variables are never passed")
            }
        }
        if let idle = configuration.idleTimeout, let most = configuration.maxIdleTimeout, idle > most {
            failFile(seen["IdleTimeout"] ?? 0, "IdleTimeout (\(Int(idle))s) is longer than MaxIdleTimeout (\(Int(most))s)")
        }
        configuration.lines = seen
        return (configuration, diagnostics)
    }

    // MARK: Lines

    struct LineProblem: Error { var message: String }

    /// Splits a line into words on spaces and tabs; `"…"` keeps spaces; a line whose first
    /// word starts with `#` is a comment (no words).
    static func splitWords(_ line: Substring) -> Result<[String], LineProblem> {
        var words: [String] = []
        var current: [Character] = []
        var inWord = false
        var quoted = false
        for character in line {
            if character == "\r" { continue }
            if quoted {
                if character == "\"" { quoted = false } else { current.append(character) }
                continue
            }
            switch character {
            case " ", "\t":
                if inWord { words.append(String(current)); current = []; inWord = false }
            case "\"":
                quoted = true
                inWord = true
            case "#" where !inWord && words.isEmpty:
                return .success([])
            default:
                current.append(character)
                inWord = true
            }
        }
        if quoted { return .failure(LineProblem(message: "unterminated quote")) }
        if inWord { words.append(String(current)) }
        return .success(words)
    }

    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(first >= 0x30 && first <= 0x39) else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte == 0x5f
        }
    }

    /// sshd's time format: `90`, `90s`, `10m`, `2h`, `1d`, `1w`, or a sum like `1h30m`.
    public static func parseDuration(_ text: String) -> Double? {
        var total = 0.0
        var digits = ""
        for character in text {
            if character.isASCII && character.isNumber {
                digits.append(character)
                continue
            }
            guard let number = Double(digits) else { return nil }
            let unit: Double
            switch character.lowercased() {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            case "w": unit = 604800
            default: return nil
            }
            total += number * unit
            digits = ""
        }
        if !digits.isEmpty {
            guard let number = Double(digits) else { return nil }
            total += number
        } else if total == 0 {
            return nil
        }
        return total
    }

    /// The keyword `word` was probably meant to be (same letters but case, or one typo).
    static func suggestion(for word: String) -> String? {
        let lower = Array(word.lowercased())
        return keywords.first { keyword in
            let candidate = Array(keyword.lowercased())
            guard abs(candidate.count - lower.count) <= 1 else { return false }
            return editDistance(candidate, lower) <= 2
        }
    }

    private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}
