import Analysis
import Flows
import Foundation
import Testing
import TestSupport

@Suite struct Samples {
    static let samplePath = Corpus.repositoryRoot.appendingPathComponent("samples/workstation.pcap")

    /// The committed sample is exactly what `SampleCapture` builds. Re-record on purpose
    /// with PHONEHOME_RECORD_SAMPLES=1.
    @Test func sampleIsBuiltByProjectCode() throws {
        let built = SampleCapture.workstation()
        if ProcessInfo.processInfo.environment["PHONEHOME_RECORD_SAMPLES"] == "1" {
            try Data(built).write(to: Self.samplePath)
        }
        let committed = try [UInt8](Data(contentsOf: Self.samplePath))
        #expect(committed == built)
    }

    /// The sample's flows, as an analyst reading conn.jsonl would list them.
    @Test func sampleFlows() throws {
        var flows: [(String, String)] = []
        let analyzer = try Analyzer(options: AnalysisOptions()) { flow, _, _ in
            flows.append(("\(flow.originatorAddress):\(flow.originatorPort)>\(flow.responderAddress):\(flow.responderPort)/\(flow.key.proto)",
                          flow.connState))
        }
        let summary = analyzer.analyze(name: "workstation.pcap", bytes: SampleCapture.workstation())
        #expect(summary.error == nil)
        #expect(summary.counts.frames == 26)
        #expect(summary.counts.reassembled == 1)
        #expect(summary.anomalies.total == 0)
        let states = Dictionary(flows, uniquingKeysWith: { a, _ in a })
        #expect(states["192.168.56.10:40100>203.0.113.20:80/6"] == "SF")
        #expect(states["192.168.56.10:40102>198.51.100.9:443/6"] == "REJ")
        #expect(states["192.168.56.10:40103>192.0.2.44:11434/6"] == "S0")
        #expect(states["192.168.56.10:40001>192.168.56.1:53/17"] == "S0")
        #expect(states["192.168.56.10:8>192.168.56.1:0/1"] == "OTH")
        #expect(states["192.168.56.10:40005>203.0.113.99:4317/17"] == "S0")
        #expect(states["fd00::10:40004>fd00::1:53/17"] == "S0")
        #expect(flows.count == 9)
    }
}
