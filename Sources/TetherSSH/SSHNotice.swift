import Glibc

/// Where non-fatal notes go when the caller doesn't take them.
public enum SSHNotice {
    public static func printToStandardError(_ message: String) {
        let line = Array("tether: \(message)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    /// A line as ssh prints it, without the "tether: " prefix ("Permission denied, please
    /// try again.", a keyboard-interactive instruction).
    public static func printPlain(_ message: String) {
        let line = Array("\(message)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
