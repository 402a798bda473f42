/// A failure in the test harness itself (a fixture that would not start, a process that
/// would not die, a peer that went quiet). The message is what a person reading a red
/// test needs: what was expected, what happened, and where to look (log paths).
public struct TestSupportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
