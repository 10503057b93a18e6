import ArgumentParser
import Capture
import Foundation
import Report

/// `phonehome read FILE...`: every record read, decompressed and counted, nothing decoded.
/// It is the engine's own read floor in the benchmark (what `analyze` costs on top of
/// getting the records), and a quick look at a file before a long run, as `capinfos`
/// gives: container, compression, records, bytes, time span and damaged records.
struct ReadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Read every record of captures without decoding them: counts, time span, damage, read speed.",
        discussion: "One JSON line per input. Exit status: 0, or 3 when an input cannot be read at all.")

    @Argument(help: "Capture files (pcap or pcapng, optionally .xz or .gz compressed), or - for stdin.")
    var inputs: [String]

    @Option(name: .customLong("xz-threads"), help: "Threads decompressing a multi-block .xz input.")
    var xzThreads: Int = 1

    @Option(name: .customLong("xz-memory-limit"), help: xzMemoryLimitHelp)
    var xzMemoryLimit: Int = Int(XZDecoding.defaultMemoryLimit >> 20)

    func run() throws {
        var unreadable = false
        for path in inputs {
            let started = DispatchTime.now().uptimeNanoseconds
            let reader: CaptureReader
            do {
                let source = path == "-" ? FileSource(descriptor: 0) : try FileSource(path: path)
                reader = try CaptureReader(name: path, source: source,
                                       xz: XZDecoding(threads: xzThreads, memoryLimitMiB: xzMemoryLimit))
            } catch {
                FileHandle.standardError.write(Data("phonehome: \(error.description)\n".utf8))
                unreadable = true
                continue
            }
            var records = 0, capturedBytes = 0
            var first = Int64.max, last = Int64.min
            while let record = reader.next() {
                records += 1
                capturedBytes &+= record.capturedLength
                if record.timestamp < first { first = record.timestamp }
                if record.timestamp > last { last = record.timestamp }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            let w = JSONWriter()
            w.beginObject()
            w.field("path", path)
            w.field("container", reader.format.rawValue)
            w.field("compression", reader.compression.rawValue)
            w.field("records", records)
            w.field("captured_bytes", capturedBytes)
            if first <= last {
                w.timeField("first", first)
                w.timeField("last", last)
            }
            w.field("anomalies", reader.anomalies.total)
            if !reader.anomalies.counts.isEmpty {
                w.beginObject("anomaly_kinds")
                for (kind, n) in reader.anomalies.counts.sorted(by: { $0.key < $1.key }) { w.field(dynamicKey: kind, n) }
                w.endObject()
            }
            w.field("seconds", seconds)
            w.endObject()
            print(String(decoding: w.bytes, as: UTF8.self))
        }
        if unreadable { throw ExitCode(ExitStatus.inputUnreadable) }
    }
}
