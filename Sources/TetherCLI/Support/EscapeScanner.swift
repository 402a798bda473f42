/// ssh's escape sequences in what is typed while a command runs in `tether enter`: a `~`
/// right after a newline (or as the very first byte) starts one. `~.` detaches, `~?`
/// lists the escapes, `~~` sends one `~`; a `~` followed by anything else is sent with
/// what follows, so typing `~/path` at the start of a line still works. Pure: bytes in,
/// bytes to forward and actions out.
struct EscapeScanner: Sendable {
    enum Action: Sendable, Equatable {
        case detach
        case help
    }

    /// With CR LF: the terminal may be raw while a command runs.
    static let help = """
    Supported escape sequences (at the start of a line):\r
     ~.  - detach: the command goes on, the session is released (tether enter continues it)\r
     ~?  - this message\r
     ~~  - send the escape character by typing it twice\r

    """

    private var atLineStart = true
    private var sawTilde = false

    /// Bytes to forward to the command, and an action if an escape was completed. Bytes
    /// after a `~.` in the same chunk are dropped (the command is being left).
    mutating func scan(_ bytes: [UInt8]) -> (forward: [UInt8], action: Action?) {
        var forward: [UInt8] = []
        forward.reserveCapacity(bytes.count)
        var action: Action?
        for byte in bytes {
            if sawTilde {
                sawTilde = false
                switch byte {
                case UInt8(ascii: "."):
                    return (forward, .detach)
                case UInt8(ascii: "?"):
                    action = .help
                    atLineStart = false
                    continue
                case UInt8(ascii: "~"):
                    forward.append(byte)
                    atLineStart = false
                    continue
                default:
                    forward.append(UInt8(ascii: "~"))
                }
            } else if atLineStart && byte == UInt8(ascii: "~") {
                sawTilde = true
                continue
            }
            forward.append(byte)
            atLineStart = byte == 0x0A || byte == 0x0D
        }
        return (forward, action)
    }
}
