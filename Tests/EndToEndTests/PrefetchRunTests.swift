import Foundation
import Report
import Testing
import TestSupport

/// With more than one job the inputs after the current one are opened, and decompressed,
/// ahead. The outputs must be the bytes of a one-job run, and no spill file may remain.
@Suite(.serialized) struct PrefetchRunTests {
    @Test func inputsOpenedAheadGiveTheOneJobOutputs() throws {
        try #require(Corpus.isAvailable || !Corpus.isCI, "shared corpora missing at \(Corpus.root.path)")
        guard Corpus.isAvailable else { return }
        let dir = try EvidenceReportTests.temporary("prefetch-inputs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let workstation = SampleCapture.workstation()
        let gzipped = dir.appendingPathComponent("workstation.pcap.gz")
        try Data(try gzip(workstation)).write(to: gzipped)
        let plain = dir.appendingPathComponent("workstation.pcap")
        try Data(workstation).write(to: plain)
        let derived = Corpus.pcapRoot.appendingPathComponent("derived")
        let wikipedia = derived.appendingPathComponent("wikipedia.pcap.xz")
        let xzBytes = try Data(contentsOf: wikipedia)
        let truncated = dir.appendingPathComponent("cut.pcap.xz")
        try xzBytes.prefix(xzBytes.count * 2 / 3).write(to: truncated)
        let inputs = [gzipped.path, wikipedia.path, plain.path, dir.appendingPathComponent("missing.pcap.xz").path,
                      derived.appendingPathComponent("quic__firefox-102.13.0esr-blog-cloudflare-com.pcap.xz").path,
                      truncated.path, derived.appendingPathComponent("merged-ether-sll2-rawip4-nflog.pcapng.xz").path, gzipped.path]
        var outputs: [[String: Data]] = []
        for jobs in [1, 2, 4] {
            let out = try EvidenceReportTests.temporary("prefetch-\(jobs)")
            defer { try? FileManager.default.removeItem(at: out) }
            let result = try EvidenceReportTests.analyzeSamples(out, inputs: inputs, jobs: jobs)
            #expect(result.inputs.count == 8)
            #expect(result.inputs.map { $0.error == nil } == [true, true, true, false, true, true, true, true])
            #expect(result.inputs[3].error?.hasSuffix("missing.pcap.xz: cannot read: No such file or directory") == true)
            #expect(result.inputs.map(\.compression) == ["gzip", "xz", "none", "-", "xz", "xz", "xz", "gzip"])
            // The cut xz gives the packets before the cut, then a read error at that offset.
            let cut = result.inputs[5]
            #expect(cut.counts.frames > 0 && cut.counts.frames < result.inputs[1].counts.frames)
            #expect(cut.anomalies.counts["read_error"] == 1)
            let names = try FileManager.default.contentsOfDirectory(atPath: out.path)
            #expect(!names.contains { $0.hasPrefix(".phonehome-spill") })
            var files: [String: Data] = [:]
            for name in names where name != "manifest.json" {
                files[name] = try Data(contentsOf: out.appendingPathComponent(name))
            }
            outputs.append(files)
        }
        #expect(outputs[0].keys.sorted() == ["anomalies.jsonl", "callouts.jsonl", "conn.jsonl", "dns.jsonl", "findings.jsonl",
                                             "http.jsonl", "report.html", "report.md", "tls.jsonl"])
        #expect((outputs[0]["findings.jsonl"]?.count ?? 0) > 0)
        for other in outputs.dropFirst() {
            for (name, bytes) in outputs[0] { #expect(other[name] == bytes, "\(name) differs") }
        }
    }
}
