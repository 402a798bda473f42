import Glibc

/// Where non-fatal notes go when the caller doesn't take them.
public enum SSHNotice {
    public static func printToStandardError(_ message: String) {
        let line = "tether: \(message)\n"
        _ = line.withCString { fputs($0, stderr) }
    }
}
