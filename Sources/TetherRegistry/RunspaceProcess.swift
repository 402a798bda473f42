import Glibc

/// Recognising a runspace host by pid without trusting the pid alone: pids are reused, so
/// a pid from the session table is only signalled if its command line is still
/// `tether-subsystem runspace … --instance-id=<id> …` and it runs as us.
enum RunspaceProcess {
    static func isRunspace(pid: pid_t, instanceID: String) -> Bool {
        var info = stat()
        guard stat("/proc/\(pid)", &info) == 0, info.st_uid == getuid() else { return false }
        guard let handle = fopen("/proc/\(pid)/cmdline", "r") else { return false }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, handle)
            if n <= 0 { break }
            bytes += buffer[0..<n]
            if bytes.count > 64 * 1024 { break }
        }
        let arguments = bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard arguments.count > 2, arguments[1] == "runspace" else { return false }
        return arguments.contains("--instance-id=\(instanceID)") || arguments.contains { $0.lowercased() == "--instance-id=\(instanceID)" }
    }
}
