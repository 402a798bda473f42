/// The binary forms of the two control messages every command makes: the `invoke`
/// request and its `started` answer. Everything else after a request id is JSON, which
/// always begins with `{`; these begin with a tag byte below it. An invoke crosses the
/// client, the keeper, the subsystem and the runspace, and each of them reads it: with
/// Foundation's JSON that was a third of the runspace's CPU per command.
///
///     invoke:  0x01 | u8 flags | [u64 waitTimeout (IEEE 754 bits), if flag 4]
///              | [u64 token, if flag 8]
///              | [u16 rows | u16 columns | u32 n | n bytes TERM, if flag 16]
///              | u32 n | n bytes script (UTF-8) | u32 count | count × (u32 n | n bytes)
///     started: 0x02 | u64 commandID
///
/// flags: 1 = stdin follows, 2 = wait if busy, 4 = waitTimeout present, 8 = token present,
/// 16 = terminal present (u16 rows, u16 columns, string TERM — after the token).
enum CommandCodec {
    static let invokeTag: UInt8 = 0x01
    /// invoke flag 16: a terminal follows (u16 rows, u16 columns, string TERM).
    static let terminalFlag: UInt8 = 16
    static let startedTag: UInt8 = 0x02

    /// A JSON body starts with this byte; anything else is a tag.
    static let jsonStart = UInt8(ascii: "{")

    static func write(_ invoke: InvokeRequest, to w: inout ByteWriter) {
        w.write(invokeTag)
        var flags: UInt8 = 0
        if invoke.stdin { flags |= 1 }
        if invoke.wait { flags |= 2 }
        if invoke.waitTimeout != nil { flags |= 4 }
        if invoke.token != nil { flags |= 8 }
        if invoke.terminal != nil { flags |= terminalFlag }
        w.write(flags)
        if let timeout = invoke.waitTimeout { w.write(timeout.bitPattern) }
        if let token = invoke.token { w.write(token) }
        if let terminal = invoke.terminal {
            w.write(terminal.size.rows)
            w.write(terminal.size.columns)
            writeString(terminal.term, to: &w)
        }
        writeString(invoke.script, to: &w)
        w.write(UInt32(invoke.arguments.count))
        for argument in invoke.arguments { writeString(argument, to: &w) }
    }

    static func readInvoke(_ r: inout ByteReader) throws(ProtocolError) -> InvokeRequest {
        let flags = try r.readU8()
        guard flags & ~(15 | terminalFlag) == 0 else { throw .badPayload("invoke: unknown flags 0x\(String(flags, radix: 16))") }
        var timeout: Double?
        if flags & 4 != 0 { timeout = Double(bitPattern: try r.readU64()) }
        var token: UInt64?
        if flags & 8 != 0 { token = try r.readU64() }
        var terminal: TerminalRequest?
        if flags & terminalFlag != 0 {
            let rows = try r.readU16()
            let columns = try r.readU16()
            terminal = TerminalRequest(term: try readString(&r, what: "TERM"), size: TerminalSize(rows: rows, columns: columns))
        }
        let script = try readString(&r, what: "the script")
        let count = try r.readU32()
        // Each argument takes at least its 4-byte length: a count beyond that is a lie.
        guard Int(count) <= r.remaining / 4 else {
            throw .badPayload("invoke: \(count) arguments announced, \(r.remaining) bytes left")
        }
        var arguments: [String] = []
        arguments.reserveCapacity(Int(count))
        for index in 0..<Int(count) {
            arguments.append(try readString(&r, what: "argument \(index + 1)"))
        }
        guard r.remaining == 0 else { throw .badPayload("invoke: \(r.remaining) bytes after the last argument") }
        return InvokeRequest(script: script, arguments: arguments, stdin: flags & 1 != 0,
                             wait: flags & 2 != 0, waitTimeout: timeout, token: token, terminal: terminal)
    }

    static func writeStarted(commandID: UInt64, to w: inout ByteWriter) {
        w.write(startedTag)
        w.write(commandID)
    }

    static func readStarted(_ r: inout ByteReader) throws(ProtocolError) -> Response {
        let commandID = try r.readU64()
        guard r.remaining == 0 else { throw .badPayload("started: \(r.remaining) bytes after the command id") }
        return .started(commandID: commandID)
    }

    private static func writeString(_ text: String, to w: inout ByteWriter) {
        var text = text
        text.withUTF8 { bytes in
            w.write(UInt32(bytes.count))
            w.write(contentsOf: bytes)
        }
    }

    private static func readString(_ r: inout ByteReader, what: String) throws(ProtocolError) -> String {
        let length = try r.readU32()
        guard Int(length) <= r.remaining else {
            throw .truncated("\(length) bytes of \(what), \(r.remaining) left")
        }
        let bytes = try r.readBytes(Int(length))
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .badPayload("invoke: \(what) is not valid UTF-8")
        }
        return text
    }
}
