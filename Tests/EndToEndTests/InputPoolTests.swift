import Analysis
import Foundation
import Report
import Testing
import TestSupport

/// With 2 jobs or more, small capture files are analysed side by side and merged in input
/// order (`InputPool`). The outputs must be the bytes of a one-job run: names learned
/// from DNS in one file bind flows of a later one, and files that fail keep their place.
@Suite(.serialized) struct InputPoolTests {
    typealias B = PacketBuilder

    /// An answer: leak.example.org is 203.0.113.7.
    static func answer() -> [UInt8] {
        var message = B.dnsQuery(id: 7, name: "leak.example.org")
        message[2] = 0x81; message[3] = 0x80; message[7] = 1
        message += [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 1, 0x2C, 0, 4, 203, 0, 113, 7]
        return B.pcap(frames: [B.ethernet(B.ipv4(src: "10.0.0.1", dst: "10.0.0.5", proto: 17, payload: B.udp(53, 40_000, message)))])
    }

    /// A connection to 203.0.113.7 that names no host itself (no SNI, no HTTP).
    static func connection(port: Int) -> [UInt8] {
        let c = "10.0.0.5", s = "203.0.113.7"
        return B.pcap(frames: [
            B.ethernet(B.ipv4(src: c, dst: s, proto: 6, payload: B.tcp(port, 9000, seq: 1, ack: 0, flags: 0x02))),
            B.ethernet(B.ipv4(src: s, dst: c, proto: 6, payload: B.tcp(9000, port, seq: 50, ack: 2, flags: 0x12))),
            B.ethernet(B.ipv4(src: c, dst: s, proto: 6, payload: B.tcp(port, 9000, seq: 2, ack: 51, flags: 0x18,
                                                                       payload: Array("upload \(SampleCapture.canary)\n".utf8)))),
        ])
    }

    @Test func pooledInputsGiveTheOneJobOutputs() throws {
        try #require(Corpus.isAvailable || !Corpus.isCI, "shared corpora missing at \(Corpus.root.path)")
        guard Corpus.isAvailable else { return }
        let dir = try EvidenceReportTests.temporary("pool-inputs")
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String, _ bytes: [UInt8]) throws -> String {
            let url = dir.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            return url.path
        }
        let workstation = SampleCapture.workstation()
        let inputs = [
            try file("a-before.pcap", Self.connection(port: 50_001)),
            try file("b-answer.pcap", Self.answer()),
            try file("c-empty.pcap", []),
            try file("d-workstation.pcap.gz", try gzip(workstation)),
            try file("e-cut.pcap", Array(workstation.prefix(workstation.count / 2 + 7))),
            dir.appendingPathComponent("f-missing.pcap").path,
            try file("g-notes.txt", Array("not a capture\n".utf8)),
            Corpus.pcapRoot.appendingPathComponent("zeek").path,
            try file("h-after.pcap", Self.connection(port: 50_002)),
        ]
        var outputs: [[String: Data]] = []
        var manifests: [[String: Any]] = []
        for jobs in [1, 2, 4] {
            let out = try EvidenceReportTests.temporary("pool-\(jobs)")
            defer { try? FileManager.default.removeItem(at: out) }
            // A smaller tables' budget: four workers fit in the pool's memory.
            let result = try EvidenceReportTests.analyzeSamples(out, inputs: inputs, jobs: jobs) { $0.appLimits.tableBytes = 16 << 20 }
            let pooled = result.pooledInputs
            // Every capture file but the missing one (which cannot be opened to be sized).
            #expect(jobs == 1 ? pooled == 0 : pooled == result.inputTotals.inputs - 1, "\(jobs) jobs: \(pooled) pooled")
            // The empty file, the missing one, and the text named as an input.
            #expect(result.inputTotals.unreadable == 3)
            #expect(result.findings > 1000 && result.flows > 3000, "\(result.findings) findings, \(result.flows) flows")
            var files: [String: Data] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: out.path) where name != "manifest.json" {
                files[name] = try Data(contentsOf: out.appendingPathComponent(name))
            }
            outputs.append(files)
            let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as? [String: Any])
            manifests.append(manifest)
        }
        // The name learned in b-answer binds the flow of h-after, not the one of a-before.
        let conn = String(decoding: outputs[0]["conn.jsonl"] ?? Data(), as: UTF8.self).split(separator: "\n")
        let before = conn.first { $0.contains("\"port\":50001") }, after = conn.first { $0.contains("\"port\":50002") }
        #expect(before?.contains("leak.example.org") == false)
        #expect(after?.contains("\"domain\":\"leak.example.org\"") == true && after?.contains("\"domain_source\":\"dns\"") == true)
        for (i, other) in outputs.enumerated().dropFirst() {
            #expect(other.keys.sorted() == outputs[0].keys.sorted())
            for (name, bytes) in outputs[0] { #expect(other[name] == bytes, "\(name) differs with \([1, 2, 4][i]) jobs") }
        }
        // The manifests' inputs alike but for their times: digests, sizes, counts, errors.
        func entries(_ manifest: [String: Any]) -> [String] {
            ((manifest["inputs"] as? [[String: Any]]) ?? []).map { entry in
                var entry = entry
                entry["seconds"] = nil
                return String(decoding: (try? JSONSerialization.data(withJSONObject: entry, options: .sortedKeys)) ?? Data(), as: UTF8.self)
            }
        }
        #expect(entries(manifests[0]).count > 900)
        #expect(entries(manifests[1]) == entries(manifests[0]) && entries(manifests[2]) == entries(manifests[0]))
    }
}
