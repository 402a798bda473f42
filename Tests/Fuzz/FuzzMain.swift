// libFuzzer's entry for scripts/fuzz (not part of the SwiftPM package): compiled with
// TetherProtocol's sources and ProtocolFuzzTargets.swift into one module, with
// -sanitize=fuzzer,address. TETHER_FUZZ_TARGET names the target (ProtocolFuzzTargets.names).
import Glibc

nonisolated(unsafe) private var fuzzTarget: String = {
    guard let name = getenv("TETHER_FUZZ_TARGET") else { return "frames" }
    return String(cString: name)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func tetherFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    ProtocolFuzzTargets.run(fuzzTarget, bytes)
    return 0
}
