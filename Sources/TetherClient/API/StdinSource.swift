/// Where a command's stdin comes from.
public enum StdinSource: Sendable {
    /// The command reads /dev/null.
    case none
    /// Read on the client's event loop until end of file and forwarded as it arrives (a
    /// pipe or a regular file; the descriptor is neither closed nor made non-blocking).
    case fileDescriptor(Int32)
    /// These bytes, then end of file.
    case bytes([UInt8])
    /// Chunks as the stream yields them; end of file when it finishes.
    case stream(AsyncStream<[UInt8]>)

    var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}
