import Analysis
import Packages
import Report
import Rules
import Flows
import Foundation
import Testing
import TestSupport

@Suite struct Samples {
    static let samples = Corpus.repositoryRoot.appendingPathComponent("samples")
    static let samplePath = samples.appendingPathComponent("workstation.pcap")

    /// The committed sample files are exactly what `SampleCapture` builds. Re-record on
    /// purpose with PHONEHOME_RECORD_SAMPLES=1.
    @Test func sampleIsBuiltByProjectCode() throws {
        let built: [(String, [UInt8])] = [("workstation.pcap", SampleCapture.workstation()),
                                          ("workstation.strace", Array(SampleCapture.strace().utf8)),
                                          ("workstation.cdx.json", Array(SampleCapture.sbom().utf8))]
        for (name, bytes) in built {
            let url = Self.samples.appendingPathComponent(name)
            if ProcessInfo.processInfo.environment["PHONEHOME_RECORD_SAMPLES"] == "1" { try Data(bytes).write(to: url) }
            let committed = try [UInt8](Data(contentsOf: url))
            #expect(committed == bytes, "\(name) differs from what SampleCapture builds")
        }
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
        #expect(summary.counts.frames == 62)
        #expect(summary.counts.reassembled == 1)
        #expect(summary.anomalies.total == 0)
        let states = Dictionary(flows, uniquingKeysWith: { a, _ in a })
        #expect(states["192.168.56.10:41100>203.0.113.20:443/6"] == "SF")
        #expect(states["192.168.56.10:42100>203.0.113.50:80/6"] == "SF")
        #expect(states["192.168.56.10:45100>198.51.100.9:443/6"] == "REJ")
        #expect(states["192.168.56.10:41001>192.168.56.1:53/17"] == "SF")
        #expect(states["192.168.56.10:8>192.168.56.1:0/1"] == "OTH")
        #expect(states["192.168.56.10:40005>203.0.113.99:4317/17"] == "S0")
        #expect(flows.count == 15)
    }

    /// The README's first command on the bundled samples: the root cause of every callout,
    /// and no planted value in the clear in any output file.
    @Test func sampleReport() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-sample-\(getpid())")
        defer { try? FileManager.default.removeItem(at: out) }
        var run = AnalysisRun(inputs: [Self.samples.path], out: out.path)
        run.options.progress = false
        var sources = RuleSources()
        sources.canaries = [SampleCapture.canary]
        run.engine = try sources.engine()
        let rules = Corpus.repositoryRoot.appendingPathComponent("rules")
        run.knowledge = try EndpointKnowledge.load(rules.appendingPathComponent("endpoints").path)
        run.systemExecutables = try SystemExecutables.load(rules.appendingPathComponent("executables").path)
        let result = try run.run()
        #expect(!result.unreadableInput && result.hostLogs == 1 && result.sboms == 1)

        // kind, destination, process, package, package method
        var rows: [String] = []
        for line in try String(contentsOf: out.appendingPathComponent("callouts.jsonl"), encoding: .utf8).split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let p = o["phonehome"] as? [String: Any] ?? [:], d = o["destination"] as? [String: Any] ?? [:]
            let destination = (d["domain"] as? String ?? d["ip"] as? String ?? "?") + ":\(d["port"] as? Int ?? 0)"
            rows.append([p["callout_kind"] as? String ?? "", destination, (o["process"] as? [String: Any])?["name"] as? String ?? "-",
                         (o["package"] as? [String: Any])?["name"] as? String ?? "-", p["package_method"] as? String ?? "-",
                         "\(p["findings"] as? Int ?? -1)"].joined(separator: " "))
        }
        #expect(rows == [
            "flow huggingface.co:443 rag_app.py huggingface-hub endpoint_knowledge+loaded 0",
            "flow registry.ollama.ai:443 ollama ollama endpoint_knowledge+executable 0",
            "flow us.i.posthog.com:443 rag_app.py chromadb endpoint_knowledge+loaded 0",
            "flow pypi.org:443 pip pip endpoint_knowledge+loaded 0",
            "flow notes-sync.example.net:80 sync_notes.py sync_notes.py application_code 3",
            "flow ipinfo.io:443 curl curl system_executable 0",
            "flow 203.0.113.99:4317 - - - 0",
            "dns_lookup backup.notes-sync.example:53 sync_notes.py sync_notes.py application_code 0",
            "connect_attempt huggingface.co:443 rag_app.py huggingface-hub endpoint_knowledge+loaded 0",
        ])
        // Canary, email and SSN: on the wire and in the process's own buffers; the loopback
        // request to the local Ollama API is not scanned (it never left the machine).
        var found: [String: Int] = [:]
        for line in try String(contentsOf: out.appendingPathComponent("findings.jsonl"), encoding: .utf8).split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            found[(o["rule"] as? [String: Any])?["id"] as? String ?? "?", default: 0] += 1
        }
        #expect(found == ["canary.cli.1": 2, "pii.email": 2, "pii.us_ssn": 2])
        for name in try FileManager.default.contentsOfDirectory(atPath: out.path) {
            let text = try String(contentsOf: out.appendingPathComponent(name), encoding: .utf8)
            for raw in [SampleCapture.canary, SampleCapture.email, SampleCapture.ssn] {
                #expect(!text.contains(raw), "\(name) holds \(raw) in the clear")
            }
        }
    }
}
