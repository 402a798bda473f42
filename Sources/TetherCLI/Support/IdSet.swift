import ArgumentParser
import TetherIO

/// Local session Ids as typed: `3`, `2..5`, `1,4,7..9`.
struct IdSet: ExpressibleByArgument, Sendable {
    var ranges: [ClosedRange<Int>]
    /// As typed (for messages).
    var text: String

    init?(argument: String) {
        text = argument
        var ranges: [ClosedRange<Int>] = []
        for part in argument.split(separator: ",", omittingEmptySubsequences: false) {
            let text = part.trimmingWhitespace()
            if let dots = text.firstRange(of: "..") {
                guard let low = Int(text[..<dots.lowerBound]), let high = Int(text[dots.upperBound...]),
                      low >= 1, low <= high else { return nil }
                ranges.append(low...high)
            } else {
                guard let id = Int(text), id >= 1 else { return nil }
                ranges.append(id...id)
            }
        }
        guard !ranges.isEmpty else { return nil }
        self.ranges = ranges
    }

    func contains(_ id: Int) -> Bool { ranges.contains { $0.contains(id) } }

    /// Single Ids named explicitly (to report the ones that match nothing).
    var singles: [Int] { ranges.filter { $0.count == 1 }.map(\.lowerBound) }

    static var defaultValueDescription: String { "N" }
}
