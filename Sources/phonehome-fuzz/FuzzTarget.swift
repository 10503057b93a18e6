import Analysis

/// One fuzz input through the whole engine: container detection, reader, every decoder,
/// defragmentation and the flow table. Anything but a clean return is a bug.
func fuzzOne(_ bytes: [UInt8]) {
    var options = AnalysisOptions()
    options.flowLimits.maxFlows = 1024
    guard let analyzer = try? Analyzer(options: options, flowSink: { _, _, _ in }) else { return }
    _ = analyzer.analyze(name: "fuzz", bytes: bytes)
}

#if FUZZING
/// libFuzzer's driver, from `libclang_rt.fuzzer_no_main` (see scripts/fuzz.sh). SwiftPM
/// owns the executable's `main`, so libFuzzer's own `main` cannot be linked; this one
/// hands the command line to the driver instead.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

@main struct FuzzDriver {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            guard let data else { return 0 }
            fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
            return 0
        }
        exit(status)
    }
}
import Glibc
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
