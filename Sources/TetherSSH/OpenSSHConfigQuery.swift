import Glibc
import TetherIO

/// Runs `ssh -G -v …` — OpenSSH resolving a destination exactly as it would connect to it
/// — and reads what it printed: the configuration on stdout, and on stderr (`-v`) which
/// files it read, which `Include` globs matched nothing and whether a `Match exec` ran,
/// which is what `SSHConfigCache` needs to know when the answer may be reused.
struct OpenSSHConfigQuery {
    /// Everything after `ssh`: the options that change the resolution and the destination.
    let arguments: [String]

    struct Answer {
        var config: SSHResolvedConfig
        var output: String
        /// Config files ssh read, in order (includes too).
        var filesRead: [String]
        /// `Include` patterns that matched nothing: a file created there later counts.
        var emptyIncludes: [String]
        /// A `Match exec` ran: its answer may differ next time, so nothing is cached.
        var ranCommand: Bool
        /// ssh's warnings ("Warning: Identity file … not accessible"): shown, never cached.
        var warnings: [String] = []
    }

    /// The argv (without `ssh`) for a destination and the command line's ssh options.
    static func arguments(host: String, user: String?, port: Int?, configFile: String?, identityFiles: [String],
                          options: [String], jumpHosts: String?) -> [String] {
        var args = ["-G"]
        if let configFile { args += ["-F", configFile] }
        if let port { args += ["-p", String(port)] }
        if let user { args += ["-l", user] }
        for identity in identityFiles { args += ["-i", identity] }
        for option in options { args += ["-o", option] }
        if let jumpHosts { args += ["-J", jumpHosts] }
        args += ["--", host]
        return args
    }

    func run(ssh: String, host: String) throws -> Answer {
        let (status, stdout, stderr) = try Self.capture(path: ssh, arguments: ["ssh", "-v"] + arguments)
        // ssh ends its log lines with "\r\n": one Character, so split on isNewline.
        let messages = String(decoding: stderr, as: UTF8.self).split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }
        guard case .exited(0) = status else {
            // ssh's own words: "/path line 3: Bad configuration option: foo", "terminating…".
            let said = messages.filter { !$0.hasPrefix("debug") && !$0.hasPrefix("OpenSSH_") && !$0.hasPrefix("Pseudo-terminal") }
            let why = said.isEmpty ? "ssh -G \(status.map { "\($0)" } ?? "failed")" : said.joined(separator: "; ")
            throw SSHError(.configuration, host: host, "ssh config: \(why)")
        }
        var answer = Answer(config: SSHResolvedConfig(parsing: String(decoding: stdout, as: UTF8.self)),
                            output: String(decoding: stdout, as: UTF8.self),
                            filesRead: [], emptyIncludes: [], ranCommand: false)
        for line in messages {
            if let path = line.suffix(after: "debug1: Reading configuration data ") {
                answer.filesRead.append(path)
            } else if line.hasPrefix("debug1: "), line.hasSuffix(" matched no files"),
                      let start = line.firstRange(of: ": include ") {
                let pattern = line[start.upperBound...].dropLast(" matched no files".count)
                answer.emptyIncludes.append(String(pattern))
            } else if line.hasPrefix("debug1: Executing command") || line.hasPrefix("debug1: Executing proxy") {
                answer.ranCommand = true
            } else if line.hasPrefix("Warning: ") {
                answer.warnings.append(line)
            }
        }
        return answer
    }

    /// Runs a short-lived program with stdin on /dev/null and collects both outputs
    /// (poll(2) over the two pipes, so neither can fill up and stall it).
    static func capture(path: String, arguments: [String]) throws -> (ExitStatus?, [UInt8], [UInt8]) {
        var out: [Int32] = [0, 0]
        var err: [Int32] = [0, 0]
        guard pipe(&out) == 0 else { throw SystemError.last("pipe") }
        guard pipe(&err) == 0 else {
            close(out[0]); close(out[1])
            throw SystemError.last("pipe")
        }
        for fd in out + err { setCloseOnExec(fd) }
        var options = Spawn.Options()
        options.fileActions = [1: out[1], 2: err[1]]
        options.devNull = [0]
        let pid: pid_t
        do {
            pid = try Spawn.spawn(path: path, arguments: arguments, options: options)
        } catch {
            for fd in out + err { close(fd) }
            throw error
        }
        close(out[1])
        close(err[1])
        var collected: [[UInt8]] = [[], []]
        var fds = [pollfd(fd: out[0], events: Int16(POLLIN), revents: 0),
                   pollfd(fd: err[0], events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 16384)
        while fds.contains(where: { $0.fd >= 0 }) {
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in fds.indices where fds[index].fd >= 0 && fds[index].revents != 0 {
                let n = read(fds[index].fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    close(fds[index].fd)
                    fds[index].fd = -1
                } else {
                    collected[index].append(contentsOf: buffer[0..<n])
                }
            }
        }
        for entry in fds where entry.fd >= 0 { close(entry.fd) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return (nil, collected[0], collected[1]) }
        }
        return (ExitStatus(waitStatus: status), collected[0], collected[1])
    }
}

extension String {
    /// The rest of the string after `prefix`, or nil if it doesn't start with it.
    func suffix(after prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
