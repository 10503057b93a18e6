import Analysis
import Foundation
@testable import Report
import Testing
import TestSupport

/// A run over many capture files keeps in memory only the inputs it lists one by one
/// (`AnalysisRun.listedInputs`); every input still reaches manifest.json and
/// anomalies.jsonl, and the report adds up the ones it does not list.
@Suite(.serialized) struct ManyInputsTests {
    /// Frames whose IPv4 total length claims more than was captured: one anomaly each.
    static func malformed(_ count: Int) -> [UInt8] {
        PacketBuilder.pcap(frames: (0 ..< count).map { i in
            var ip = PacketBuilder.ipv4(src: "10.0.0.\(i % 200 + 1)", dst: "93.184.216.34", proto: 17,
                                        payload: PacketBuilder.udp(40000 + i, 53, PacketBuilder.dnsQuery(id: i, name: "example.com")))
            ip[2] = 0x05; ip[3] = 0xDC
            return PacketBuilder.ethernet(ip)
        })
    }

    @Test func inputsBeyondTheListedOnesAreAddedUpNotKept() throws {
        let dir = try EvidenceReportTests.temporary("many-inputs")
        defer { try? FileManager.default.removeItem(at: dir) }
        var inputs: [String] = []
        for (i, bytes) in [SampleCapture.workstation(), Self.malformed(30), SampleCapture.workstation(),
                           Self.malformed(7), Self.malformed(12), SampleCapture.workstation()].enumerated() {
            let url = dir.appendingPathComponent("input\(i).pcap")
            try Data(bytes).write(to: url)
            inputs.append(url.path)
        }
        // Host logs too (`strace -ff` writes one per thread), and an SBOM, always listed.
        for pid in [101, 102, 103] {
            let url = dir.appendingPathComponent("trace.\(pid)")
            try SampleCapture.strace().write(to: url, atomically: true, encoding: .utf8)
            inputs.append(url.path)
        }
        let sbom = dir.appendingPathComponent("workstation.cdx.json")
        try SampleCapture.sbom().write(to: sbom, atomically: true, encoding: .utf8)
        inputs.append(sbom.path)
        func run(listing: Int, _ name: String) throws -> (AnalysisRun.Result, URL) {
            let out = dir.appendingPathComponent(name)
            var run = AnalysisRun(inputs: inputs, out: out.path)
            run.options.progress = false
            run.options.jobs = 1
            run.listedInputs = listing
            run.warn = { _ in }
            return (try run.run(), out)
        }
        let (all, allOut) = try run(listing: EvidenceReport.CaptureList.maxListed, "all")
        let (two, twoOut) = try run(listing: 2, "two")

        // Every input is in the manifest either way, with the same entry and totals.
        func manifest(_ out: URL) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as? [String: Any])
        }
        let m1 = try manifest(allOut), m2 = try manifest(twoOut)
        let entries1 = try #require(m1["inputs"] as? [[String: Any]]), entries2 = try #require(m2["inputs"] as? [[String: Any]])
        #expect(entries1.count == 6)
        #expect(entries1.map { $0["name"] as? String } == (0 ..< 6).map { "input\($0).pcap" })
        #expect(entries1.map { ($0["sha256"] as? String)?.count } == Array(repeating: 64, count: 6))
        #expect(NSArray(array: entries1).isEqual(to: entries2))
        #expect(NSDictionary(dictionary: try #require(m1["totals"] as? [String: Any]))
            .isEqual(to: try #require(m2["totals"] as? [String: Any])))
        let logs1 = try #require((m1["host_logs"] as? [String: Any])?["files"] as? [[String: Any]])
        let logs2 = try #require((m2["host_logs"] as? [String: Any])?["files"] as? [[String: Any]])
        #expect(logs1.map { $0["path"] as? String } == ["trace.101", "trace.102", "trace.103"])
        #expect(logs1.allSatisfy { ($0["lines"] as? Int ?? 0) > 0 })
        #expect(NSArray(array: logs1).isEqual(to: logs2))
        #expect(NSArray(array: try #require(m1["evidence_files"] as? [Any])).isEqual(to: try #require(m2["evidence_files"] as? [Any])))
        let anomalies = entries1.map { ($0["anomalies"] as? [String: Any])?["total"] as? Int ?? -1 }
        #expect(anomalies[1] >= 30 && anomalies[3] >= 7 && anomalies[4] >= 12)

        // The logs, anomalies.jsonl included, are the same bytes.
        for name in ["conn.jsonl", "dns.jsonl", "callouts.jsonl", "findings.jsonl", "anomalies.jsonl"] {
            let a = try Data(contentsOf: allOut.appendingPathComponent(name)), b = try Data(contentsOf: twoOut.appendingPathComponent(name))
            #expect(a == b, "\(name) differs")
        }
        let anomalyLines = try String(contentsOf: twoOut.appendingPathComponent("anomalies.jsonl"), encoding: .utf8)
            .split(separator: "\n").count
        #expect(anomalyLines == anomalies.reduce(0, +))
        #expect(two.inputTotals.anomalyLines == anomalyLines)

        // The result keeps the listed inputs only, without their anomalies' details.
        #expect(all.inputs.count == 6 && two.inputs.count == 2)
        #expect(two.inputTotals.inputs == 6 && two.inputTotals.frames == all.inputs.reduce(0) { $0 + $1.counts.frames })
        #expect(two.inputs[1].anomalies.total == anomalies[1] && two.inputs[1].anomalies.details.isEmpty)

        // The report lists two inputs and adds up the other four.
        let report = try String(contentsOf: twoOut.appendingPathComponent("report.md"), encoding: .utf8)
        let unlistedFrames = all.inputs[2...].reduce(0) { $0 + $1.counts.frames }
        #expect(report.contains("- Analysed: 6 capture files ("))
        #expect(report.contains("| input0.pcap |") && report.contains("| input1.pcap |") && !report.contains("| input2.pcap |"))
        #expect(report.contains("| 4 more inputs (each in manifest.json) |   | ") && report.contains(" |   | \(unlistedFrames) |   |   |"))
        let kinds = all.inputs[2...].reduce(into: [String: Int]()) { $0.merge($1.anomalies.counts, uniquingKeysWith: +) }
        #expect(!kinds.isEmpty)
        for (kind, n) in kinds { #expect(report.contains("| 4 more inputs (each in manifest.json) | \(kind) | \(n) |")) }
        #expect(report.contains("6 capture files (") && report.contains(", 3 host log(s), 1 SBOM(s)."))
        #expect(report.contains("| trace.101 | strace |") && report.contains("| trace.102 | strace |") && !report.contains("| trace.103 |"))
        #expect(report.contains("| workstation.cdx.json | sbom:cyclonedx |"))
        #expect(report.contains("| 1 more host log (each in manifest.json) |   | "))
        let html = try String(contentsOf: twoOut.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(html.contains("4 more inputs (each in manifest.json)") && html.contains("1 more host log (each in manifest.json)"))
        #expect(two.otherInputs.count == 4 && two.otherInputs[2] == "… and 1 more host log (manifest.json lists every one)")
        #expect(all.otherInputs.count == 4 && all.otherInputs[2].hasPrefix("trace.103: strace, "))
    }

    /// A stop during pooled inputs cuts short the one being merged and those under way
    /// beside it: the manifest's `interrupted` names the first, then the others (four at
    /// most, then a count).
    @Test func interruptionNamesEveryInputCutShort() throws {
        let dir = try EvidenceReportTests.temporary("cut-short")
        defer { try? FileManager.default.removeItem(at: dir) }
        let anomalies = try OutputFile(directory: dir.path, name: "anomalies.jsonl")
        let ledger = InputLedger(anomalies: anomalies, spillDirectory: dir.path, rules: false, listed: 10)
        var first = InputSummary(name: "a.pcap")
        first.counts.frames = 10
        ledger.add(first)
        #expect(ledger.interruptedAt == nil)
        for (i, frame) in [67_854, 18_187, 0, 5, 6, 7, 8].enumerated() {
            var cut = InputSummary(name: "p\(i).pcap")
            cut.interruptedAtFrame = frame
            ledger.add(cut)
            if i == 0 { #expect(ledger.interruptedAt == "after frame 67854 of p0.pcap") }
            if i == 1 { #expect(ledger.interruptedAt == "after frame 67854 of p0.pcap (under way beside it, also stopped: p1.pcap after frame 18187)") }
        }
        #expect(ledger.interruptedAt == "after frame 67854 of p0.pcap (under way beside it, also stopped: p1.pcap after frame 18187, "
                + "p2.pcap after frame 0, p3.pcap after frame 5, p4.pcap after frame 6, and 2 more)")
    }

    /// Without a spill file (no room, no directory), the entries are kept in memory and
    /// the manifest is whole all the same.
    @Test func manifestEntriesWithoutASpillFile() throws {
        let dir = try EvidenceReportTests.temporary("entries")
        defer { try? FileManager.default.removeItem(at: dir) }
        for spillDirectory in [dir.path, dir.appendingPathComponent("missing").path] {
            let entries = ManifestEntries(directory: spillDirectory)
            for text in ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"] {
                Array(text.utf8).withUnsafeBytes { entries.append($0) }
            }
            let file = try OutputFile(directory: dir.path, name: "entries.json")
            #expect(entries.copy(to: file))
            try file.commit()
            let written = try String(contentsOf: dir.appendingPathComponent("entries.json"), encoding: .utf8)
            #expect(written == "{\"a\":1},{\"b\":2},{\"c\":3}")
        }
    }
}
