import Glibc

/// Where non-fatal notes go when the caller doesn't take them.
public enum SSHNotice {
    public static func printToStandardError(_ message: String) {
        let line = Array("tether: \(message)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
