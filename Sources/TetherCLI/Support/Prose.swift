/// Help text is written wrapped at ~88 columns in the source; the help printer wraps
/// again to the terminal, so paragraph lines are joined first. Lines indented by two
/// spaces (examples) and blank lines are kept as they are.
func prose(_ text: String) -> String {
    var out: [String] = []
    var paragraph: [String] = []
    func flush() {
        if !paragraph.isEmpty { out.append(paragraph.joined(separator: " ")) }
        paragraph.removeAll()
    }
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.isEmpty || line.hasPrefix("  ") || line.hasSuffix(":") {
            flush()
            out.append(String(line))
        } else {
            paragraph.append(String(line))
        }
    }
    flush()
    return out.joined(separator: "\n")
}
