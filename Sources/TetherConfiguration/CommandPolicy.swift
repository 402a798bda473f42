/// Decides whether a restricted session may run a command line: which `Command` rule
/// allows it, or why none does. Pure: the words come from `CommandLineWords`.
public enum CommandPolicy {
    public enum Decision: Equatable {
        /// Run `rule.path` with `arguments` (argv[1…]).
        case allowed(rule: CommandRule, arguments: [String])
        case refused(String)
    }

    public static func decide(_ words: [String], rules: [CommandRule]) -> Decision {
        guard let program = words.first else { return .refused("an empty command line: name a program") }
        let arguments = Array(words.dropFirst())
        let candidates: [CommandRule]
        if program.contains("/") {
            guard program.hasPrefix("/") else {
                return .refused("\(program): a program is named by its bare name or the absolute path of its Command rule, never by a relative path")
            }
            candidates = rules.filter { $0.path == program }
            if candidates.isEmpty {
                return .refused("\(program) is not the path of any Command rule (\(allowedPrograms(rules)))")
            }
        } else {
            candidates = rules.filter { $0.commandName == program }
            if candidates.isEmpty {
                return .refused("no Command rule allows a program named \"\(program)\" (\(allowedPrograms(rules)))")
            }
        }
        var failures: [String] = []
        for rule in candidates {
            if let failure = mismatch(arguments, rule) {
                failures.append("\(rule) (\(rule.location)): \(failure)")
            } else {
                return .allowed(rule: rule, arguments: arguments)
            }
        }
        return .refused("the arguments fit no rule for \(program): " + failures.joined(separator: "; "))
    }

    /// Why `arguments` don't fit `rule`, or nil when they do.
    static func mismatch(_ arguments: [String], _ rule: CommandRule) -> String? {
        if arguments.count < rule.patterns.count || (!rule.admitsMore && arguments.count > rule.patterns.count) {
            let expected = rule.admitsMore ? "at least \(rule.patterns.count)" : "\(rule.patterns.count)"
            return "takes \(expected) argument\(rule.patterns.count == 1 && !rule.admitsMore ? "" : "s"), not \(arguments.count)"
        }
        for (index, pattern) in rule.patterns.enumerated() where !GlobPattern.matches(pattern, arguments[index]) {
            return "argument \(index + 1) \"\(arguments[index])\" does not match \"\(pattern)\""
        }
        return nil
    }

    static func allowedPrograms(_ rules: [CommandRule]) -> String {
        guard !rules.isEmpty else { return "this configuration allows no program" }
        var names: [String] = []
        for rule in rules where !names.contains(rule.commandName) { names.append(rule.commandName) }
        return "allowed: " + names.joined(separator: ", ")
    }
}
