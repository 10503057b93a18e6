import Analysis

/// One fuzz input through the whole engine: container detection, reader, every decoder,
/// defragmentation and the flow table. Anything but a clean return is a bug.
func fuzzOne(_ bytes: [UInt8]) {
    var options = AnalysisOptions()
    options.flowLimits.maxFlows = 1024
    guard let analyzer = try? Analyzer(options: options, flowSink: { _, _ in }) else { return }
    _ = analyzer.analyze(name: "fuzz", bytes: bytes)
}

#if FUZZING
/// libFuzzer entry point (build with -sanitize=fuzzer,address -DFUZZING; see README).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
import Foundation

/// Without libFuzzer: replays the files given (crash reproducers, seed corpora).
@main struct FuzzReplay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            fuzzOne([UInt8](data))
        }
    }
}
#endif
