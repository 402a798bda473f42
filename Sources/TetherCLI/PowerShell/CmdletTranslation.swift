import TetherIO

/// PowerShell's cmdlet names and parameter syntax, rewritten into tether's native verbs
/// and options before swift-argument-parser sees the command line:
/// `tether Get-PSSession -comp web1 -Name 'a*',b` → `tether get --computer web1 --name a*,b`.
/// A pure function of argv, so it is unit-tested without sshd; the native verbs stay the
/// documented interface, and every parameter either maps to a native option or is refused
/// by name (never parsed and dropped).
enum CmdletTranslation {
    /// A parameter (or cmdlet) the native verbs cannot express, misspelled, or ambiguous.
    struct Failure: Error, CustomStringConvertible, Equatable {
        var description: String
    }

    /// argv without the program name. Returns it unchanged unless it starts with a cmdlet
    /// name (any case).
    static func translate(_ arguments: [String]) throws -> [String] {
        guard let first = arguments.first, let cmdlet = Cmdlet.named(first) else { return arguments }
        return try cmdlet.translate(Array(arguments.dropFirst()))
    }
}

/// How one PowerShell parameter is spelled natively.
enum NativeParameter: Sendable {
    /// A value option: `--long VALUE` (lists with commas and ranges `1..3` pass as typed:
    /// the native options read them the same way).
    case option(String)
    /// A value option whose values PowerShell capitalizes (`Opened`, `Block`) and tether
    /// spells in lower case.
    case lowercasedOption(String)
    /// A switch: `--long`, omitted for `-Switch:$false`.
    case flag(String)
    /// The verb's positional argument (`tether new HOST`).
    case positional
    /// `-ScriptBlock '{ … }'`: the braces are stripped and the body becomes SCRIPT.
    case scriptBlock
    /// `-ArgumentList a,b`: the script's "$@".
    case argumentList
    /// A PowerShell parameter with no tether counterpart: refused, saying why.
    case unsupported(String)

    /// The native spelling, for `tether help powershell`.
    var nativeSpelling: String {
        switch self {
        case .option(let long), .lowercasedOption(let long): "--\(long)"
        case .flag(let long): "--\(long)"
        case .positional: "HOST argument"
        case .scriptBlock: "SCRIPT after --"
        case .argumentList: "ARGS after SCRIPT"
        case .unsupported: "(none)"
        }
    }
}

/// One cmdlet: the native verb it becomes and its parameters.
struct Cmdlet: Sendable {
    var name: String
    var verb: [String]
    var parameters: [(name: String, native: NativeParameter)]
    /// What a value given without a parameter name is (PowerShell's position 0).
    var positional: String?

    static func named(_ text: String) -> Cmdlet? {
        all.first { $0.name.lowercased() == text.lowercased() }
    }

    /// Finds a parameter by its name or an unambiguous prefix, case-insensitively.
    func parameter(_ typed: String) throws -> (name: String, native: NativeParameter) {
        let lowered = typed.lowercased()
        if let exact = parameters.first(where: { $0.name.lowercased() == lowered }) { return exact }
        let candidates = parameters.filter { $0.name.lowercased().hasPrefix(lowered) }
        if candidates.count == 1 { return candidates[0] }
        if candidates.isEmpty {
            throw CmdletTranslation.Failure(description: "\(name): no parameter -\(typed); \(name) takes "
                + parameters.filter { if case .unsupported = $0.native { false } else { true } }
                    .map { "-\($0.name)" }.joined(separator: ", ")
                + " (see tether help powershell)")
        }
        throw CmdletTranslation.Failure(description: "\(name): -\(typed) is ambiguous: it could be "
            + candidates.map { "-\($0.name)" }.joined(separator: ", "))
    }

    func translate(_ arguments: [String]) throws -> [String] {
        var options: [String] = []
        var positionals: [String] = []
        var script: String?
        var scriptArguments: [String] = []
        var trailing: [String]?
        func add(_ parameterName: String, _ value: String?) throws {
            guard let native = parameters.first(where: { $0.name == parameterName })?.native else { return }
            switch native {
            case .option(let long):
                options += ["--\(long)", value!]
            case .lowercasedOption(let long):
                options += ["--\(long)", value!.lowercased()]
            case .flag(let long):
                options.append("--\(long)")
            case .positional:
                positionals.append(value!)
            case .scriptBlock:
                guard script == nil else {
                    throw CmdletTranslation.Failure(description: "\(name): -\(parameterName) given twice")
                }
                script = Self.scriptBody(value!)
            case .argumentList:
                scriptArguments += value!.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            case .unsupported(let why):
                throw CmdletTranslation.Failure(description: "\(name): -\(parameterName) has no tether equivalent: \(why)")
            }
        }

        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                trailing = Array(arguments[index...])
                break
            }
            if argument.hasPrefix("--") {
                // A native option mixed in (`--json`, `--reconnect-timeout=30`): as typed.
                options.append(argument)
                continue
            }
            if argument == "-?" {
                options.append("--help")
                continue
            }
            guard argument.hasPrefix("-"), argument.count > 1, argument.dropFirst().first!.isLetter else {
                guard let positional else {
                    throw CmdletTranslation.Failure(description: "\(name): unexpected value '\(argument)': name its parameter (see tether help powershell)")
                }
                try add(positional, argument)
                continue
            }
            var typed = String(argument.dropFirst())
            var attached: String?
            if let colon = typed.firstIndex(of: ":") {
                attached = String(typed[typed.index(after: colon)...])
                typed = String(typed[..<colon])
            }
            let parameter = try self.parameter(typed)
            if case .flag = parameter.native {
                if let attached {
                    switch attached.lowercased() {
                    case "$true", "true", "1": break
                    case "$false", "false", "0": continue
                    case "":
                        throw CmdletTranslation.Failure(description: "\(name): -\(parameter.name): needs $true or $false; quote it ('-\(parameter.name):$false') so the shell leaves $false alone")
                    default:
                        throw CmdletTranslation.Failure(description: "\(name): -\(parameter.name) is a switch: -\(parameter.name):$true or -\(parameter.name):$false, not '\(attached)'")
                    }
                }
                try add(parameter.name, nil)
                continue
            }
            let value: String
            if let attached {
                value = attached
            } else {
                guard index < arguments.count else {
                    throw CmdletTranslation.Failure(description: "\(name): -\(parameter.name) needs a value")
                }
                value = arguments[index]
                index += 1
            }
            try add(parameter.name, value)
        }

        var result = verb + positionals + options
        if let script {
            if trailing != nil {
                throw CmdletTranslation.Failure(description: "\(name): give the script either as -ScriptBlock or after --, not both")
            }
            result += ["--", script] + scriptArguments
        } else if let trailing {
            result += ["--"] + trailing + scriptArguments
        } else if !scriptArguments.isEmpty {
            // -FilePath's script takes the arguments after --.
            result += ["--"] + scriptArguments
        }
        return result
    }

    /// `{ body }` → `body`: PowerShell's script block braces are not bash.
    static func scriptBody(_ text: String) -> String {
        let trimmed = text.trimmingWhitespace()
        guard trimmed.hasPrefix("{"), trimmed.hasSuffix("}"), trimmed.count >= 2 else { return text }
        return String(trimmed.dropFirst().dropLast()).trimmingWhitespace()
    }
}
