/// Summary numbers of a list of timings (seconds).
struct Timings {
    let samples: [Double]

    init(_ samples: [Double]) {
        self.samples = samples.sorted()
    }

    var median: Double { percentile(0.5) }

    /// Nearest-rank percentile; `p` in 0...1.
    func percentile(_ p: Double) -> Double {
        guard !samples.isEmpty else { return .nan }
        if p == 0.5 && samples.count % 2 == 0 {
            return (samples[samples.count / 2 - 1] + samples[samples.count / 2]) / 2
        }
        let rank = Int((p * Double(samples.count)).rounded(.up)) - 1
        return samples[min(max(rank, 0), samples.count - 1)]
    }

    var mean: Double { samples.isEmpty ? .nan : samples.reduce(0, +) / Double(samples.count) }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
