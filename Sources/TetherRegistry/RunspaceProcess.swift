import Glibc

/// Recognising a runspace host by pid without trusting the pid alone: pids are reused, so
/// a pid from the session table is only signalled if its command line is still
/// `tether-subsystem runspace … --instance-id=<id> …` and it runs as us.
enum RunspaceProcess {
    static func isRunspace(pid: pid_t, instanceID: String) -> Bool {
        var info = stat()
        guard stat("/proc/\(pid)", &info) == 0, info.st_uid == getuid() else { return false }
        guard let bytes = readFile("/proc/\(pid)/cmdline") else { return false }
        let arguments = bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard arguments.count > 2, arguments[1] == "runspace" else { return false }
        let wanted = "--instance-id=\(instanceID.lowercased())"
        return arguments.contains { $0.lowercased() == wanted }
    }
}
