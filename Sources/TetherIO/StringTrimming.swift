extension StringProtocol {
    /// The text without leading and trailing whitespace (Foundation's
    /// `trimmingCharacters(in: .whitespaces)`, without loading Foundation for it).
    public func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
              let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}
