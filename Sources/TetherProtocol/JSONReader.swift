/// A forward-only reader of JSON text for the few control payloads that are big enough for
/// Foundation's JSONDecoder to matter (a `sessions` list of a thousand sessions decodes in
/// ~10 ms with it, well under 1 ms with this). The caller walks its own schema —
/// `beginObject`/`nextKey`, `beginArray`/`nextElement`, the scalar reads — and skips what it
/// doesn't know with `skipValue`, so unknown keys are ignored as JSONDecoder ignores them.
///
/// Strict JSON (RFC 8259): no trailing commas, no comments, no raw control characters in
/// strings. Every error is a `ProtocolError.badPayload` naming `what` is being read and the
/// byte offset, never a crash.
public struct JSONReader {
    private let bytes: [UInt8]
    private let end: Int
    /// Offset of the next unread byte.
    public private(set) var position: Int
    /// Names the payload in error messages ("sessions reply").
    private let what: String
    /// True right after `{` or `[`: the next key or element needs no comma before it.
    private var atContainerStart = false

    /// Deepest nesting `skipValue` follows (our own payloads nest three levels).
    static let maximumSkipDepth = 64

    public init(_ bytes: [UInt8], from start: Int = 0, what: String) {
        self.bytes = bytes
        self.end = bytes.count
        self.position = start
        self.what = what
    }

    // MARK: Containers

    public mutating func beginObject() throws(ProtocolError) {
        try expect(UInt8(ascii: "{"), "'{'")
        atContainerStart = true
    }

    /// The next key of the current object (its ':' consumed), or nil after its closing '}'.
    public mutating func nextKey() throws(ProtocolError) -> String? {
        skipWhitespace()
        guard position < end else { throw truncated("a key or '}'") }
        if bytes[position] == UInt8(ascii: "}") {
            position += 1
            atContainerStart = false
            return nil
        }
        if !atContainerStart { try expect(UInt8(ascii: ","), "',' or '}'") }
        skipWhitespace()
        let key = try readString()
        try expect(UInt8(ascii: ":"), "':' after key \"\(key)\"")
        atContainerStart = false
        return key
    }

    public mutating func beginArray() throws(ProtocolError) {
        try expect(UInt8(ascii: "["), "'['")
        atContainerStart = true
    }

    /// True if the current array has another element (its ',' consumed); false after its
    /// closing ']'.
    public mutating func nextElement() throws(ProtocolError) -> Bool {
        skipWhitespace()
        guard position < end else { throw truncated("an element or ']'") }
        if bytes[position] == UInt8(ascii: "]") {
            position += 1
            atContainerStart = false
            return false
        }
        if !atContainerStart { try expect(UInt8(ascii: ","), "',' or ']'") }
        atContainerStart = false
        return true
    }

    /// Only whitespace may follow the value just read.
    public mutating func expectEnd() throws(ProtocolError) {
        skipWhitespace()
        guard position == end else { throw failure("unexpected bytes after the value") }
    }

    // MARK: Scalars

    /// Consumes `null` and returns true if it is next; otherwise reads nothing.
    public mutating func readNull() throws(ProtocolError) -> Bool {
        skipWhitespace()
        guard position < end, bytes[position] == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    public mutating func readBool() throws(ProtocolError) -> Bool {
        skipWhitespace()
        guard position < end else { throw truncated("true or false") }
        switch bytes[position] {
        case UInt8(ascii: "t"): try literal("true"); return true
        case UInt8(ascii: "f"): try literal("false"); return false
        default: throw failure("expected true or false")
        }
    }

    public mutating func readString() throws(ProtocolError) -> String {
        skipWhitespace()
        try expect(UInt8(ascii: "\""), "a string")
        let start = position
        // Fast path: no escapes, the bytes are the string. Scanned through a pointer (no
        // per-byte bounds checks: the loop's own bound keeps it inside).
        let (stop, stopByte) = bytes.withUnsafeBufferPointer { buffer -> (Int, UInt8) in
            var index = start
            while index < end {
                let byte = buffer[index]
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { return (index, byte) }
                index += 1
            }
            return (end, 0)
        }
        position = stop
        guard stop < end else { throw truncated("the end of a string") }
        switch stopByte {
        case UInt8(ascii: "\""):
            let string = bytes.withUnsafeBufferPointer {
                String(decoding: UnsafeBufferPointer(rebasing: $0[start..<stop]), as: UTF8.self)
            }
            position += 1
            atContainerStart = false
            return string
        case UInt8(ascii: "\\"):
            return try readEscapedString(from: start)
        default:
            throw failure("raw control character 0x\(String(stopByte, radix: 16)) in a string")
        }
    }

    public mutating func readDouble() throws(ProtocolError) -> Double {
        let (text, _) = try numberText()
        // Double(String) rounds correctly and ignores the locale.
        guard let value = Double(text), value.isFinite else { throw failure("number \(text) is out of range") }
        return value
    }

    /// An integer of type T; JSONDecoder's rule: a number with a fraction or an exponent is
    /// accepted when it is exactly an integer that fits.
    public mutating func readInteger<T: FixedWidthInteger>(_: T.Type = T.self) throws(ProtocolError) -> T {
        let (text, isPlainInteger) = try numberText()
        if isPlainInteger, let value = T(text) { return value }
        if let double = Double(text), double.rounded(.towardZero) == double, let value = T(exactly: double) {
            return value
        }
        throw failure("number \(text) is not a \(T.self)")
    }

    /// Skips one value of any kind (for keys this reader's caller doesn't know).
    public mutating func skipValue() throws(ProtocolError) {
        try skipValue(depth: 0)
    }

    private mutating func skipValue(depth: Int) throws(ProtocolError) {
        guard depth < Self.maximumSkipDepth else { throw failure("nested deeper than \(Self.maximumSkipDepth) levels") }
        skipWhitespace()
        guard position < end else { throw truncated("a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            try beginObject()
            while try nextKey() != nil { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            try beginArray()
            while try nextElement() { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "\""):
            _ = try readString()
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            _ = try readBool()
        case UInt8(ascii: "n"):
            _ = try readNull()
        default:
            _ = try numberText()
        }
    }

    // MARK: Lexing

    private mutating func skipWhitespace() {
        while position < end {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): position += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8, _ description: @autoclosure () -> String) throws(ProtocolError) {
        skipWhitespace()
        guard position < end else { throw truncated(description()) }
        guard bytes[position] == byte else { throw failure("expected \(description())") }
        position += 1
    }

    private mutating func literal(_ word: StaticString) throws(ProtocolError) {
        let count = word.utf8CodeUnitCount
        guard end - position >= count else { throw truncated("\(word)") }
        let matches = word.withUTF8Buffer { expected in
            (0..<count).allSatisfy { bytes[position + $0] == expected[$0] }
        }
        guard matches else { throw failure("expected \(word)") }
        position += count
        atContainerStart = false
    }

    /// The text of the number at `position` (RFC 8259 grammar) and whether it is a plain
    /// integer (no fraction, no exponent).
    private mutating func numberText() throws(ProtocolError) -> (String, Bool) {
        skipWhitespace()
        let start = position
        var plain = true
        func digits() -> Int {
            let first = position
            while position < end, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") { position += 1 }
            return position - first
        }
        if position < end, bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < end else { throw truncated("a number") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else if digits() == 0 {
            position = start
            throw failure("expected a value")
        }
        if position < end, bytes[position] == UInt8(ascii: ".") {
            position += 1
            plain = false
            guard digits() > 0 else { throw failure("expected digits after '.'") }
        }
        if position < end, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            plain = false
            if position < end, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw failure("expected digits in the exponent") }
        }
        atContainerStart = false
        return (String(decoding: bytes[start..<position], as: UTF8.self), plain)
    }

    /// The slow path of `readString`, from the string's first byte: escapes decoded.
    private mutating func readEscapedString(from start: Int) throws(ProtocolError) -> String {
        var utf8 = Array(bytes[start..<position])
        while position < end {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                atContainerStart = false
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard position < end else { throw truncated("an escape") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"): utf8.append(contentsOf: try unicodeEscape())
                default: throw failure("unknown escape '\\\(Character(Unicode.Scalar(escape)))'")
                }
            default:
                if byte < 0x20 { throw failure("raw control character 0x\(String(byte, radix: 16)) in a string") }
                utf8.append(byte)
            }
        }
        throw truncated("the end of a string")
    }

    /// After `\u`: four hex digits, and a second `\uXXXX` for a surrogate pair.
    private mutating func unicodeEscape() throws(ProtocolError) -> [UInt8] {
        let first = try hex4()
        var scalarValue = UInt32(first)
        if (0xD800...0xDBFF).contains(first) {
            guard end - position >= 2, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                throw failure("unpaired surrogate \\u\(String(first, radix: 16))")
            }
            position += 2
            let second = try hex4()
            guard (0xDC00...0xDFFF).contains(second) else { throw failure("unpaired surrogate \\u\(String(first, radix: 16))") }
            scalarValue = 0x10000 + (UInt32(first - 0xD800) << 10) + UInt32(second - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(first) {
            throw failure("unpaired surrogate \\u\(String(first, radix: 16))")
        }
        guard let scalar = Unicode.Scalar(scalarValue) else { throw failure("bad \\u escape") }
        return Array(String(Character(scalar)).utf8)
    }

    private mutating func hex4() throws(ProtocolError) -> UInt16 {
        guard end - position >= 4 else { throw truncated("four hex digits") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("bad hex digit in a \\u escape")
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    // MARK: Errors

    /// An error naming the payload, the problem and where it is.
    public func failure(_ problem: String) -> ProtocolError {
        .badPayload("\(what): \(problem) at byte \(position)")
    }

    private func truncated(_ expected: String) -> ProtocolError {
        .badPayload("\(what): ends early, expected \(expected) at byte \(position)")
    }
}
