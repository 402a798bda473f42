import Foundation
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
        var widths = [Int](repeating: 0, count: header.count)
        for line in lines { for (i, cell) in line.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return lines.map { line in
            line.enumerated().map { i, cell in
                // Ids right-aligned like PowerShell's; the last column unpadded.
                if i == 0 { return String(repeating: " ", count: widths[i] - cell.count) + cell }
                if i == line.count - 1 { return cell }
                return cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: " ")
        }.joined(separator: "\n") + "\n"
    }

    static func json(_ rows: [SessionRow]) -> String {
        let time = TimeFormatter()
        let objects: [[String: Any]] = rows.map { row in
            var object: [String: Any] = [
                "id": row.id.map { $0 as Any } ?? NSNull(),
                "name": row.name,
                "computerName": row.computerName,
                "state": row.state.rawValue,
                "configurationName": row.configuration,
                "availability": row.availability.rawValue,
                "instanceId": row.instanceID,
                "holder": row.heldElsewhere.map { holder -> Any in
                    ["clientHost": holder.clientHost, "clientId": holder.clientID, "since": time.string(holder.since)]
                } ?? NSNull(),
                "reason": row.reason.map { $0 as Any } ?? NSNull(),
            ]
            if let info = row.info {
                object["busy"] = info.busy
                object["idleTimeout"] = info.idleTimeout
                object["outputBuffering"] = info.outputBuffering.rawValue
                object["bufferLimit"] = info.bufferLimit
                object["createdAt"] = time.string(info.createdAt)
            }
            return object
        }
        let data = (try? JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func formatTime(_ seconds: Double) -> String {
        TimeFormatter().string(seconds)
    }

    /// One ISO 8601 formatter for a whole table: making one costs ~0.1 ms (ICU), which a
    /// thousand rows paid once per timestamp.
    struct TimeFormatter {
        private let formatter = ISO8601DateFormatter()

        init() {
            formatter.formatOptions = [.withInternetDateTime]
        }

        func string(_ seconds: Double) -> String {
            formatter.string(from: Date(timeIntervalSince1970: seconds))
        }
    }

    static func print(_ rows: [SessionRow], json: Bool) {
        if json {
            Terminal.shared.out(Self.json(rows))
        } else if !rows.isEmpty {
            Terminal.shared.out(render(rows))
        }
    }
}
