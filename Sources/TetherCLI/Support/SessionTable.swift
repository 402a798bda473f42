import Glibc
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import TetherClient
import TetherProtocol

/// One line of `tether get`/`new`/`connect`/`disconnect` output.
struct SessionRow: Sendable {
    var id: Int?
    var name: String
    var computerName: String
    var state: SessionState
    var configuration: String
    var availability: SessionAvailability
    var instanceID: String
    var heldElsewhere: Holder?
    var reason: String?
    var info: SessionInfo?

    init(local: LocalSession?, summary: SessionSummary) {
        id = local?.id
        name = summary.name
        computerName = summary.computerName
        state = summary.state
        configuration = summary.info.configuration
        availability = summary.availability
        instanceID = summary.instanceID
        heldElsewhere = summary.heldElsewhere
        reason = summary.info.reason
        info = summary.info
    }

    /// A session of this client's list whose host could not be asked or no longer has it.
    init(local: LocalSession, state: SessionState, reason: String?) {
        id = local.id
        name = local.name
        computerName = local.computerName
        self.state = state
        configuration = local.configuration
        availability = .none
        instanceID = local.instanceID
        self.reason = reason
    }
}

enum SessionTable {
    static func render(_ rows: [SessionRow]) -> String {
        let time = TimeFormatter()
        let showHolder = rows.contains { $0.heldElsewhere != nil }
        var header = ["Id", "Name", "ComputerName", "State", "ConfigurationName", "Availability"]
        if showHolder { header.append("HeldBy") }
        var lines: [[String]] = [header, header.map { String(repeating: "-", count: $0.count) }]
        for row in rows {
            var cells = [row.id.map(String.init) ?? "", row.name, row.computerName, row.state.rawValue,
                         row.configuration, row.availability.rawValue]
            if showHolder {
                cells.append(row.heldElsewhere.map { "\($0.clientHost) since \(time.string($0.since))" } ?? "")
            }
            lines.append(cells)
        }
        // Widths in Characters (what a terminal shows), each cell counted once.
        let counts = lines.map { $0.map(\.count) }
        var widths = [Int](repeating: 0, count: header.count)
        for line in counts { for (i, count) in line.enumerated() { widths[i] = max(widths[i], count) } }
        // One string appended in place: a thousand rows of small joined strings cost more
        // than the whole list's decoding.
        var text = ""
        text.reserveCapacity(lines.count * (widths.reduce(0, +) + widths.count))
        let spaces = String(repeating: " ", count: widths.max() ?? 0)
        for (line, lineCounts) in zip(lines, counts) {
            for (i, cell) in line.enumerated() {
                let padding = spaces.prefix(widths[i] - lineCounts[i])
                if i > 0 { text += " " }
                // Ids right-aligned like PowerShell's; the last column unpadded.
                if i == 0 {
                    text += padding
                    text += cell
                } else if i == line.count - 1 {
                    text += cell
                } else {
                    text += cell
                    text += padding
                }
            }
            text += "\n"
        }
        return text
    }

    /// The session object of `--json` (docs/json.md): every key always present (null
    /// where this run could not learn the value), keys in JSONSerialization's sorted order
    /// (the output is what `JSONSerialization` wrote with `[.prettyPrinted, .sortedKeys]`).
    /// The failures follow as error objects in the same array.
    static func json(_ rows: [SessionRow], failures: [Failures.Entry] = []) -> String {
        let time = TimeFormatter()
        var out = PrettyJSON(reservingCapacity: 64 + rows.count * 560)
        out.beginArray()
        for row in rows {
            out.element()
            out.beginObject()
            out.key("availability"); out.string(row.availability.rawValue)
            out.key("bufferLimit"); if let info = row.info { out.integer(info.bufferLimit) } else { out.null() }
            out.key("busy"); if let info = row.info { out.bool(info.busy) } else { out.null() }
            out.key("computerName"); out.string(row.computerName)
            out.key("configurationName"); out.string(row.configuration)
            out.key("createdAt"); if let info = row.info { out.string(time.string(info.createdAt)) } else { out.null() }
            out.key("error"); out.null()
            out.key("holder")
            if let holder = row.heldElsewhere {
                out.beginObject()
                out.key("clientHost"); out.string(holder.clientHost)
                out.key("clientId"); out.string(holder.clientID)
                out.key("since"); out.string(time.string(holder.since))
                out.endObject()
            } else {
                out.null()
            }
            out.key("id")
            if let id = row.id { out.integer(id) } else { out.null() }
            out.key("idleTimeout"); if let info = row.info { out.double(info.idleTimeout) } else { out.null() }
            out.key("instanceId"); out.string(row.instanceID)
            out.key("name"); out.string(row.name)
            out.key("outputBuffering"); out.optionalString(row.info?.outputBuffering.rawValue)
            out.key("reason"); out.optionalString(row.reason)
            out.key("state"); out.string(row.state.rawValue)
            out.endObject()
        }
        FailureJSON.append(failures, to: &out)
        out.endArray()
        return String(decoding: out.bytes, as: UTF8.self) + "\n"
    }

    static func formatTime(_ seconds: Double) -> String {
        TimeFormatter().string(seconds)
    }

    /// ISO 8601 in UTC to the second ("2026-11-22T02:21:56Z"), exactly what Foundation's
    /// ISO8601DateFormatter (`.withInternetDateTime`) prints — checked against it over a
    /// million values — without ICU: its first use loads time zones (~3 ms) and every call
    /// goes through ICU, which a thousand `--json` rows paid a thousand times.
    struct TimeFormatter {
        func string(_ seconds: Double) -> String {
            // ICU formats the date's milliseconds, rounded: 12.9996 s prints as 13 s.
            let date = Date(timeIntervalSince1970: seconds)
            let milliseconds = ((date.timeIntervalSinceReferenceDate + Date.timeIntervalBetween1970AndReferenceDate) * 1000).rounded()
            var time = time_t((milliseconds / 1000).rounded(.down))
            var parts = tm()
            // gmtime_r fails only for years beyond Int32: no session was created then.
            guard gmtime_r(&time, &parts) != nil else { return "\(seconds)" }
            var text: [UInt8] = []
            text.reserveCapacity(20)
            func digits(_ value: Int32, _ width: Int) {
                var value = value
                var reversed: [UInt8] = []
                repeat {
                    reversed.append(UInt8(ascii: "0") + UInt8(value % 10))
                    value /= 10
                } while value > 0 || reversed.count < width
                text.append(contentsOf: reversed.reversed())
            }
            digits(parts.tm_year + 1900, 4); text.append(UInt8(ascii: "-"))
            digits(parts.tm_mon + 1, 2); text.append(UInt8(ascii: "-"))
            digits(parts.tm_mday, 2); text.append(UInt8(ascii: "T"))
            digits(parts.tm_hour, 2); text.append(UInt8(ascii: ":"))
            digits(parts.tm_min, 2); text.append(UInt8(ascii: ":"))
            digits(parts.tm_sec, 2); text.append(UInt8(ascii: "Z"))
            return String(decoding: text, as: UTF8.self)
        }
    }

    /// The table, or with `json` the JSON array with `failures` as error objects after the
    /// sessions.
    static func print(_ rows: [SessionRow], json: Bool, failures: Failures) {
        if json {
            Terminal.shared.out(Self.json(rows, failures: failures.entries))
        } else if !rows.isEmpty {
            Terminal.shared.out(render(rows))
        }
    }
}
