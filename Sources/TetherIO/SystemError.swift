import Glibc

/// A failed system call, with the call's name and errno, printable as one clear line.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// The error for the call that just failed.
    public static func last(_ operation: String) -> SystemError {
        SystemError(operation, errno: Glibc.errno)
    }

    public var description: String {
        "\(operation): \(String(cString: strerror(errno)))"
    }
}

/// A plain error with a message meant for a person.
public struct TetherIOError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
