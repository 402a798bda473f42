#if !TETHER_FUZZ_SINGLE_MODULE
import TetherProtocol
#endif

/// What the fuzzer (scripts/fuzz, libFuzzer) and the corpus regression test
/// (FuzzCorpusTests) run on each input: the frame decoder and every message decoder of
/// TetherProtocol, fed bytes nobody vetted. A decoder may refuse an input — that is its
/// job — but must never crash, and what it accepts must survive the trip back: encoding a
/// decoded value and decoding it again gives the same bytes. A broken promise traps.
///
/// Shared by both: compiled into the test target, and by scripts/fuzz into one module
/// with TetherProtocol's sources (TETHER_FUZZ_SINGLE_MODULE).
public enum ProtocolFuzzTargets {
    public static let names = ["frames", "messages"]

    public static func run(_ target: String, _ data: [UInt8]) {
        switch target {
        case "frames": frames(data)
        case "messages": messages(data)
        default: fatalError("no fuzz target \(target); targets: \(names)")
        }
    }

    // MARK: The frame decoder

    /// The input as a byte stream, cut into chunks (the first byte picks their size, so
    /// frames arrive split everywhere): two decoders — frames copied out, and frames
    /// exactly as on the wire — must agree frame by frame and fail alike; every frame's
    /// payload then goes to the decoder its type calls for.
    static func frames(_ data: [UInt8]) {
        guard let first = data.first else { return }
        let stream = data.dropFirst()
        let chunk = Int(first) * 61 + 1
        var copied = FrameDecoder()
        var wired = FrameDecoder()
        var offset = stream.startIndex
        while offset < stream.endIndex {
            let end = min(stream.endIndex, offset + chunk)
            copied.append(stream[offset..<end])
            wired.append(stream[offset..<end])
            offset = end
            while true {
                let a: Frame?
                let b: WireFrame?
                do { a = try copied.next() } catch {
                    do { _ = try wired.nextWire(); check(false, "next failed (\(error)), nextWire did not") } catch {}
                    return
                }
                do { b = try wired.nextWire() } catch { check(false, "nextWire failed (\(error)), next did not"); return }
                guard let a, let b else {
                    check(a == nil && b == nil, "one decoder had a frame, the other not")
                    break
                }
                check(a.type == b.type && a.channel == b.channel, "the two decoders disagree on a frame's head")
                check(a.encoded() == b.bytes, "a frame re-encoded differs from its wire bytes")
                payload(of: a)
            }
        }
        check(copied.hasPartialFrame == wired.hasPartialFrame, "the decoders disagree on a partial frame at the end")
    }

    /// A frame's payload, as the receiver of its type reads it.
    static func payload(of frame: Frame) {
        switch frame.type {
        case .hello: hello(frame.payload)
        case .request: request(frame.payload)
        case .response: response(frame.payload)
        case .record: record(frame.payload)
        case .ack: ack(frame.payload)
        case .event: _ = try? WireJSON.decode(Event.self, from: frame.payload)
        case .error: _ = try? WireJSON.decode(ErrorBody.self, from: frame.payload)
        case .stdinData, .stdinEOF: break
        }
    }

    // MARK: Each message decoder

    /// The first byte picks the decoder, the rest is its payload.
    static func messages(_ data: [UInt8]) {
        guard let first = data.first else { return }
        let payload = Array(data.dropFirst())
        switch first % 8 {
        case 0: request(payload)
        case 1: response(payload)
        case 2: hello(payload)
        case 3: record(payload)
        case 4: ack(payload)
        case 5: sessionList(payload)
        case 6: _ = try? WireJSON.decode(Event.self, from: payload)
        default: _ = try? WireJSON.decode(ErrorBody.self, from: payload)
        }
    }

    static func request(_ payload: [UInt8]) {
        guard let (id, request) = try? ControlCodec.decodeRequest(payload) else { return }
        check(ControlCodec.requestID(of: payload) == id, "requestID(of:) disagrees with decodeRequest")
        let once = ControlCodec.request(id: id, request)
        guard let (againID, again) = try? ControlCodec.decodeRequest(once) else {
            return check(false, "an encoded request does not decode: \(request)")
        }
        check(againID == id && ControlCodec.request(id: againID, again) == once, "a request changes on the round trip: \(request)")
    }

    static func response(_ payload: [UInt8]) {
        guard let (id, response) = try? ControlCodec.decodeResponse(payload) else { return }
        let once = ControlCodec.response(id: id, response)
        guard let (againID, again) = try? ControlCodec.decodeResponse(once) else {
            return check(false, "an encoded response does not decode: \(response)")
        }
        check(againID == id && ControlCodec.response(id: againID, again) == once, "a response changes on the round trip")
    }

    static func hello(_ payload: [UInt8]) {
        guard let hello = try? Hello.decode(payload) else { return }
        let once = hello.payload()
        guard let again = try? Hello.decode(once) else { return check(false, "an encoded hello does not decode") }
        check(again.payload() == once, "a hello changes on the round trip")
    }

    static func record(_ payload: [UInt8]) {
        let viaArray = try? Record.decode(payload)
        let viaPointer = payload.withUnsafeBytes { try? Record.decode($0) }
        check(viaArray == viaPointer, "the two record decoders disagree")
        guard let record = viaArray else { return }
        check(record.payload() == payload, "a record re-encoded differs from its payload")
        _ = try? record.commandID()
        _ = try? record.exitStatus()
        _ = try? record.droppedCounts()
        _ = try? record.closedInfo()
    }

    static func ack(_ payload: [UInt8]) {
        guard let seq = try? ControlCodec.decodeAck(payload) else { return }
        check(ControlCodec.ack(seq) == payload, "an ack re-encoded differs")
    }

    static func sessionList(_ payload: [UInt8]) {
        guard let infos = (try? SessionListCoding.decodeIfSessions(payload)) ?? nil else { return }
        let once = SessionListCoding.encode(infos)
        guard let again = (try? SessionListCoding.decodeIfSessions(once)) ?? nil else {
            return check(false, "an encoded session list does not decode")
        }
        check(SessionListCoding.encode(again) == once, "a session list changes on the round trip")
    }

    static func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fatalError("fuzz invariant: \(message())") }
    }
}
