import TetherClient
import TetherProtocol

/// Implicit remoting (`tether import` / `tether export`, PowerShell's Import-PSSession and
/// Export-PSSession): the session's functions, aliases and programs become local bash
/// functions that run the same name in the session through `tether invoke`. This file is
/// the pure part — what to ask the session, how to read its answer, the bash to print —
/// so the generated text is unit-tested; the verbs do the talking.
enum ImplicitRemoting {
    /// One name the session runs, and what it is there.
    struct RemoteCommand: Equatable, Sendable {
        enum Kind: String, Sendable {
            case alias = "a", function = "f", program = "c"

            var described: String {
                switch self {
                case .alias: "alias"
                case .function: "function"
                case .program: "program"
                }
            }
        }

        var name: String
        var kind: Kind
    }

    /// Lists the session's aliases, functions and programs on PATH whose names match any
    /// of the patterns ("$2"…), as `TOKEN<TAB>KIND<TAB>NAME` lines ("$1" is a random
    /// token: output of the session's background jobs that lands on stdout meanwhile is
    /// not a name). A name is listed once, as bash would resolve it: an alias first,
    /// then a function; builtins and keywords are the local shell's own and are not
    /// listed, nor is the session's own machinery (`__tether_*`, its `exit` and `exec`).
    /// It runs in a subshell, so nothing it sets stays in the session, and every word is
    /// `\builtin` so no alias or function of the user's stands in.
    static let discoveryScript = #"""
    (
        \builtin shopt -u nocasematch
        __tether_it=$1
        \builtin shift
        __tether_ip=("$@")
        __tether_im() {
            \builtin local p
            for p in "${__tether_ip[@]}"; do
                case $1 in $p) \builtin return 0 ;; esac
            done
            \builtin return 1
        }
        \builtin declare -A __tether_is
        __tether_is[exit]=- __tether_is[exec]=-
        __tether_il() {
            \builtin local n
            while IFS= \builtin read -r n; do
                [[ -n $n && -z ${__tether_is[$n]-} && $n != __tether* ]] || \builtin continue
                __tether_is[$n]=$1
                if [[ $1 != - ]] && __tether_im "$n"; then
                    \builtin printf '%s\t%s\t%s\n' "$__tether_it" "$1" "$n"
                fi
            done
        }
        __tether_il a < <(\builtin compgen -a)
        __tether_il f < <(\builtin compgen -A function)
        __tether_il - < <(\builtin compgen -k; \builtin compgen -b)
        __tether_il c < <(\builtin compgen -A command)
    )
    """#

    /// The commands in the discovery script's stdout, and everything else it carried
    /// (the session's own output from between commands: it must reach the user).
    static func parseDiscovery(_ output: [UInt8], token: String) -> (commands: [RemoteCommand], other: [UInt8]) {
        var commands: [RemoteCommand] = []
        var other: [UInt8] = []
        let prefix = Array((token + "\t").utf8)
        var lineStart = 0
        while lineStart < output.count {
            let end = output[lineStart...].firstIndex(of: 0x0A) ?? output.count
            let line = output[lineStart..<end]
            let next = min(end + 1, output.count)
            if line.starts(with: prefix) {
                let fields = line.dropFirst(prefix.count).split(separator: 0x09, maxSplits: 1, omittingEmptySubsequences: false)
                if fields.count == 2, let kind = RemoteCommand.Kind(rawValue: String(decoding: fields[0], as: UTF8.self)) {
                    commands.append(RemoteCommand(name: String(decoding: fields[1], as: UTF8.self), kind: kind))
                }
            } else {
                other += output[lineStart..<next]
            }
            lineStart = next
        }
        return (commands.sorted { $0.name < $1.name }, other)
    }

    /// Characters a local function name may have here: every bash accepts these in a
    /// `function NAME` definition and none needs quoting, so the session's name can stand
    /// unquoted in the command it runs (an alias only expands unquoted).
    static func isPortableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: "-") else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || "_.:+@-".utf8.contains(byte)
        }
    }

    /// How a session is reached and, for `export`, re-created: what the generated code
    /// passes to `tether`.
    struct SessionReference: Sendable {
        var tether: String
        var computerName: String
        var name: String
        var instanceID: String
        var connection: ConnectionOptions
        var configuration: String
        var idleTimeout: Double?
        var outputBuffering: OutputBuffering?
        var bufferLimit: Int?
        var jobLimit: Int?

        /// A short stable tag naming this session's helper functions (FNV-1a of computer
        /// and name): importing the same session again replaces its own functions.
        var tag: String {
            var hash: UInt32 = 2_166_136_261
            for byte in Array(computerName.utf8) + [0] + Array(name.utf8) {
                hash = (hash ^ UInt32(byte)) &* 16_777_619
            }
            let hex = String(hash, radix: 16)
            return String(repeating: "0", count: 8 - hex.count) + hex
        }

        /// The session's selector: its computer and its exact name (names are unique per
        /// host and user; a re-created session keeps the name, not the instance id).
        var selector: [String] {
            ["--computer", computerName, "--name", ImplicitRemoting.escapedPattern(name)]
        }

        /// `-F -p -l -i -o -J …` as given to `new`/`connect` (and this command line).
        var connectionArguments: [String] {
            var arguments: [String] = []
            let options = connection.remembered
            if let file = options.configFile { arguments += ["-F", file] }
            if let port = options.port { arguments += ["-p", String(port)] }
            if let user = options.user { arguments += ["-l", user] }
            for identity in options.identityFiles { arguments += ["-i", identity] }
            for option in options.sshOptions { arguments += ["-o", option] }
            if let jump = options.jumpHosts { arguments += ["-J", jump] }
            if let subsystem = options.subsystem { arguments += ["--subsystem", subsystem] }
            if let timeout = options.connectTimeout { arguments += ["--connect-timeout", number(timeout)] }
            if let checking = options.strictHostKeyChecking { arguments += ["--strict-host-key-checking", checking.rawValue] }
            if let transport = options.transport { arguments += ["--transport", transport.rawValue] }
            return arguments
        }

        /// What `export --restore-session` needs to make the same session again.
        var restoreArguments: [String] {
            var arguments = ["export", "--restore-session"] + selector
            if configuration != "bash" { arguments += ["--configuration", configuration] }
            if let idleTimeout { arguments += ["--idle-timeout", number(idleTimeout)] }
            if let outputBuffering { arguments += ["--output-buffering", outputBuffering.rawValue] }
            if let bufferLimit { arguments += ["--buffer-limit", String(bufferLimit)] }
            if let jobLimit { arguments += ["--job-limit", String(jobLimit)] }
            return arguments + connectionArguments
        }

        private func number(_ value: Double) -> String {
            value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
        }
    }

    /// What to print: the bash that defines the functions.
    struct Plan: Sendable {
        var session: SessionReference
        var commands: [RemoteCommand]
        var prefix: String
        var allowClobber: Bool
        /// `export`: the file restores its session on first use.
        var restoresSession: Bool
        /// When and by what it was made (a comment).
        var madeBy: String
    }

    static func code(_ plan: Plan) -> String {
        let session = plan.session
        let tag = session.tag
        let helper = "__tether_s_\(tag)"
        let tether = "\\command " + quote(session.tether)
        let invoke = ([tether, "invoke"] + (session.selector + session.connectionArguments).map(quote) + ["--"]).joined(separator: " ")
        var text = """
        # \(plan.madeBy): commands of session \(session.name) on \(session.computerName)
        # (instance id \(session.instanceID)) as local bash functions. Each runs the command of the
        # same name in that session with tether invoke: its arguments exactly, stdin when it is
        # not a terminal, stdout, stderr and the exit status pass through (255: the host could
        # not be reached). A name that already exists in this shell is kept and not imported,
        # saying so on stderr\(plan.allowClobber ? ", unless --allow-clobber (given: it is replaced)" : " (--allow-clobber replaces it)").

        """
        if plan.restoresSession {
            let restore = ([tether] + session.restoreArguments.map(quote)).joined(separator: " ")
            text += """
            # On first use in a shell the session is checked: re-created (same computer,
            # connection options and name) if it is gone, reconnected if it is disconnected.
            \(helper)() {
                if [[ -z ${__tether_ready_\(tag)-} ]]; then
                    \(restore) || \\builtin return
                    __tether_ready_\(tag)=1
                fi
                \(invoke) "$@"
            }

            """
        } else {
            text += """
            \(helper)() {
                \(invoke) "$@"
            }

            """
        }
        // Whether LOCAL may be defined (1: --allow-clobber): a name this shell has already
        // is kept, unless it is this session's own import of it.
        text += #"""
        __tether_may_define() {
            \builtin type -t -- "$1" >/dev/null 2>&1 || \builtin return 0
            \builtin local kind
            kind=$(\builtin type -t -- "$1")
            if [[ $kind == function && $(\builtin declare -f -- "$1") == *"$2 "* ]]; then
                \builtin return 0
            fi
            if [[ $kind == keyword ]]; then
                \builtin printf 'tether: %s is a shell keyword here: not imported\n' "$1" >&2
                \builtin return 1
            fi
            if [[ $3 == 1 ]]; then
                [[ $kind != alias ]] || \builtin unalias -- "$1"
                \builtin return 0
            fi
            \builtin printf 'tether: %s already exists here (%s): not imported; --allow-clobber replaces it\n' "$1" "$kind" >&2
            \builtin return 1
        }

        """#
        let clobber = plan.allowClobber ? "1" : "0"
        for command in plan.commands {
            let local = plan.prefix + command.name
            let remote = quote(command.name + " \"$@\"")
            text += "# \(local): \(command.kind.described) \(command.name) in the session\n"
            text += "if __tether_may_define \(local) \(helper) \(clobber); then function \(local) { \(helper) \(remote) \"$@\"; }; fi\n"
        }
        text += "\\builtin unset -f __tether_may_define\n"
        return text
    }

    /// A session name as a `--name` pattern that matches only it: names have no wildcard
    /// characters (the host refuses them), but a `\\` would escape the next one.
    static func escapedPattern(_ name: String) -> String {
        name.replacing("\\", with: "\\\\")
    }

    /// `text` as one bash word: bare when nothing in it is special, else single-quoted
    /// (a `'` becomes `'\''`).
    static func quote(_ text: String) -> String {
        let plain = !text.isEmpty && text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || "_./:=@%+,-".utf8.contains(byte)
        }
        return plain ? text : "'" + text.replacing("'", with: #"'\''"#) + "'"
    }
}
