import TetherClient
import TetherProtocol

extension OutputChunk {
    /// One element of `--json`'s `records`: the stream's name and what it carried (keys in
    /// JSONSerialization's sorted order). stdout and stderr are text, as in `stdout`/`stderr`.
    func writeJSON(to out: inout PrettyJSON) {
        out.beginObject()
        switch self {
        case .stdout(let bytes), .stderr(let bytes):
            out.key("stream"); out.string(streamName)
            out.key("text"); out.string(String(decoding: bytes, as: UTF8.self))
        case .dropped(let bytes, let records):
            out.key("bytes"); out.integer(Int(bytes))
            out.key("records"); out.integer(Int(records))
            out.key("stream"); out.string(streamName)
        case .stream(.warning(let text)), .stream(.verbose(let text)), .stream(.information(let text)):
            out.key("stream"); out.string(streamName)
            out.key("text"); out.string(text)
        case .stream(.progress(let progress)):
            out.key("activity"); out.string(progress.activity)
            out.key("completed"); out.bool(progress.completed)
            out.key("percent")
            if let percent = progress.percent { out.integer(percent) } else { out.null() }
            out.key("status"); out.string(progress.status)
            out.key("stream"); out.string(streamName)
        }
        out.endObject()
    }

    var streamName: String {
        switch self {
        case .stdout: "stdout"
        case .stderr: "stderr"
        case .dropped: "dropped"
        case .stream(let record): record.streamName
        }
    }
}
