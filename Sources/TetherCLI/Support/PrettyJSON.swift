/// The text of `--json` output, byte for byte what Foundation's JSONSerialization writes
/// with `[.prettyPrinted, .sortedKeys]` (two-space indent, `"key" : value`, "/" escaped
/// as "\/"), without its cost: JSONSerialization sorts keys with a locale-aware NSString
/// compare and bridges every value, ~150 ms for a thousand sessions. Keys are written in
/// the order the caller gives — callers give them in JSONSerialization's order
/// (case-insensitive: "id" < "idleTimeout" < "instanceId").
struct PrettyJSON {
    private(set) var bytes: [UInt8] = []
    /// One entry per open container: true until its first member or element is written.
    private var isFirst: [Bool] = []

    init(reservingCapacity capacity: Int = 1024) {
        bytes.reserveCapacity(capacity)
    }

    mutating func beginArray() { open(UInt8(ascii: "[")) }
    mutating func endArray() { close(UInt8(ascii: "]")) }
    mutating func beginObject() { open(UInt8(ascii: "{")) }
    mutating func endObject() { close(UInt8(ascii: "}")) }

    /// Before each array element.
    mutating func element() { separate() }

    /// An object member's key; write its value next.
    mutating func key(_ key: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: " "), UInt8(ascii: ":"), UInt8(ascii: " ")])
    }

    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): append("\\\"")
            case UInt8(ascii: "\\"): append("\\\\")
            case UInt8(ascii: "/"): append("\\/")
            case 0x08: append("\\b")
            case 0x0C: append("\\f")
            case 0x0A: append("\\n")
            case 0x0D: append("\\r")
            case 0x09: append("\\t")
            case 0x00..<0x20: bytes.append(contentsOf: Array((byte < 0x10 ? "\\u000" : "\\u00").utf8) + Array(String(byte, radix: 16).utf8))
            default: bytes.append(byte)  // UTF-8 of everything else as is
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func optionalString(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    mutating func integer(_ value: Int) { bytes.append(contentsOf: String(value).utf8) }

    /// JSONSerialization's spelling: the shortest round-trip text without a trailing ".0".
    mutating func double(_ value: Double) {
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes.append(contentsOf: text.utf8)
    }

    mutating func bool(_ value: Bool) { append(value ? "true" : "false") }
    mutating func null() { append("null") }

    private mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    private mutating func open(_ bracket: UInt8) {
        bytes.append(bracket)
        bytes.append(UInt8(ascii: "\n"))
        isFirst.append(true)
    }

    private mutating func close(_ bracket: UInt8) {
        isFirst.removeLast()
        bytes.append(UInt8(ascii: "\n"))
        indent()
        bytes.append(bracket)
    }

    private mutating func separate() {
        if isFirst[isFirst.count - 1] {
            isFirst[isFirst.count - 1] = false
        } else {
            bytes.append(contentsOf: [UInt8(ascii: ","), UInt8(ascii: "\n")])
        }
        indent()
    }

    private mutating func indent() {
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * isFirst.count))
    }
}
