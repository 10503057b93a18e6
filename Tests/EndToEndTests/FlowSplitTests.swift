import Analysis
import Flows
import Foundation
import Rules
import Testing
import TestSupport

/// One input split by flow hash across workers gives the events of one worker, in the
/// same order, with the same names: what spans flows (passive DNS, DNS tunnels over
/// queries from many ports, idle sweeps) is decided where one worker would decide it.
@Suite struct FlowSplitTests {
    typealias B = PacketBuilder
    static let canary = "PH-SPLIT-CANARY-42c1"

    /// 60 rounds, a second a frame (sweeps every 30 s evict idle and closed flows on the
    /// way): a lookup from its own port and its answer, then a TCP connection to the
    /// answered address carrying an email address (a finding named by passive DNS, as is
    /// the conn line); every third round's lookup is a slice of the canary in base32 under
    /// one parent (three slices: a tunnel over queries from several ports, so several
    /// workers), and every fourth
    /// connection is left open (swept as idle, or left for the end).
    static func capture() -> [UInt8] {
        let b32 = B.base32(Array(canary.utf8)).lowercased()
        let slices = stride(from: 0, to: b32.count, by: 12).map { String(Array(b32)[$0 ..< min($0 + 12, b32.count)]) }
        var frames: [[UInt8]] = []
        let host = "10.0.0.5", resolver = "10.0.0.1"
        for i in 0 ..< 60 {
            let port = 50_000 + i
            if i % 3 == 0 && i / 3 < slices.count {
                frames.append(B.ethernet(B.ipv4(src: host, dst: resolver, proto: 17,
                                                payload: B.udp(port, 53, B.dnsQuery(id: i, name: "\(slices[i / 3]).c.exfil-example.org")))))
                continue
            }
            let name = "svc\(i).example.com"
            let server: [UInt8] = [198, 51, 100, UInt8(i + 1)]
            frames.append(B.ethernet(B.ipv4(src: host, dst: resolver, proto: 17, payload: B.udp(port, 53, B.dnsQuery(id: i, name: name)))))
            frames.append(B.ethernet(B.ipv4(src: resolver, dst: host, proto: 17, payload: B.udp(53, port, answer(id: i, name: name, server)))))
            let dst = server.map(String.init).joined(separator: ".")
            let c2s = { (p: [UInt8]) in B.ethernet(B.ipv4(src: host, dst: dst, proto: 6, payload: p)) }
            let s2c = { (p: [UInt8]) in B.ethernet(B.ipv4(src: dst, dst: host, proto: 6, payload: p)) }
            let sport = 40_000 + i
            let payload = Array("hello user\(i)@example.org bye\n".utf8)
            frames.append(c2s(B.tcp(sport, 9000, seq: 100, ack: 0, flags: 0x02)))
            frames.append(s2c(B.tcp(9000, sport, seq: 900, ack: 101, flags: 0x12)))
            frames.append(c2s(B.tcp(sport, 9000, seq: 101, ack: 901, flags: 0x18, payload: payload)))
            frames.append(s2c(B.tcp(9000, sport, seq: 901, ack: 101 + UInt32(payload.count), flags: 0x10)))
            if i % 4 != 0 {
                let end = 101 + UInt32(payload.count)
                frames.append(c2s(B.tcp(sport, 9000, seq: end, ack: 901, flags: 0x11)))
                frames.append(s2c(B.tcp(9000, sport, seq: 901, ack: end + 1, flags: 0x11)))
            }
        }
        return B.pcap(frames: frames)
    }

    /// An answer with one A record for `name`.
    static func answer(id: Int, name: String, _ address: [UInt8]) -> [UInt8] {
        var m = B.be16(id) + [0x81, 0x80] + B.be16(1) + B.be16(1) + B.be16(0) + B.be16(0)
        for label in name.split(separator: ".") { m.append(UInt8(label.utf8.count)); m += Array(label.utf8) }
        m += [0] + B.be16(1) + B.be16(1)
        return m + [0xC0, 0x0C] + B.be16(1) + B.be16(1) + B.be32(300) + B.be16(4) + address
    }

    static func run(_ pcap: [UInt8], workers: Int) throws -> (lines: [String], summary: InputSummary) {
        let engine = try RuleEngine(rules: RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path)
                                        + [Rule.canary(Self.canary, index: 1)])
        let transcript = EventTranscript()
        var options = AnalysisOptions()
        options.workers = workers
        let analyzer = try Analyzer(options: options, events: transcript, rules: engine) { transcript.flow($0, $1, $2) }
        let summary = analyzer.analyze(name: "split.pcap", bytes: pcap)
        return (transcript.lines, summary)
    }

    @Test func workersGiveOneWorkersEvents() throws {
        let pcap = Self.capture()
        let one = try Self.run(pcap, workers: 1)
        let lines = one.lines
        // What the capture holds, as one worker sees it.
        // 60 lookups (3 of them tunnel slices), 57 connections named by the answers.
        #expect(lines.filter { $0.hasPrefix("flow ") }.count == 117)
        #expect(lines.filter { $0.hasPrefix("flow ") && $0.hasSuffix(" dns") }.count == 57)
        #expect(lines.filter { $0.contains(" idle ") }.count > 50 && lines.filter { $0.contains(" end ") }.count > 0)
        let named = lines.filter { $0.hasPrefix("finding pii.email tcp.stream") && $0.contains("domain=svc") }
        #expect(named.count == 57)
        let tunnel = lines.filter { $0.contains("dns.tunnel") }
        #expect(tunnel.count == 1 && tunnel.first?.contains("domain=c.exfil-example.org") == true, "\(tunnel)")
        for workers in [2, 3, 4] {
            let split = try Self.run(pcap, workers: workers)
            let differs = split.lines.indices.first { $0 >= lines.count || split.lines[$0] != lines[$0] }
            #expect(split.lines == lines, "\(workers) workers: first difference at line \(differs ?? split.lines.count)")
            let a = one.summary, b = split.summary
            #expect(a.counts.frames == b.counts.frames && a.counts.tcp == b.counts.tcp && a.counts.udp == b.counts.udp)
            #expect(a.flows == b.flows && a.evictions == b.evictions)
            #expect(a.app.sessions == b.app.sessions && a.app.dnsMessages == b.app.dnsMessages)
            #expect(a.scan.findings == b.scan.findings && a.scan.bytesScanned == b.scan.bytesScanned && a.scan.streams == b.scan.streams)
            #expect(a.anomalies.counts == b.anomalies.counts && a.anomalies.details == b.anomalies.details)
        }
    }

    /// Zeek's test traces (tunnels of every kind, fragments, DNS over TCP, mail, SMB, TLS),
    /// analysed whole and split three ways with the sinks on a thread of their own (none
    /// pooled, small as they are): every output the same bytes.
    @Test func zeekTracesSplitThreeWays() throws {
        try #require(Corpus.isAvailable || !Corpus.isCI, "shared corpora missing at \(Corpus.root.path)")
        guard Corpus.isAvailable else { return }
        let traces = Corpus.pcapRoot.appendingPathComponent("zeek").path
        let a = try EvidenceReportTests.temporary("split-w1"), b = try EvidenceReportTests.temporary("split-w3")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let one = try EvidenceReportTests.analyzeSamples(a, inputs: [traces], jobs: 1)
        let three = try EvidenceReportTests.analyzeSamples(b, inputs: [traces], jobs: 2, workers: 3) { $0.poolMaxBytes = 0 }
        #expect(three.pooledInputs == 0)
        #expect(one.findings > 1000 && one.flows > 3000, "\(one.findings) findings, \(one.flows) flows")
        #expect(one.findings == three.findings && one.flows == three.flows && one.callouts == three.callouts)
        for name in ["conn.jsonl", "dns.jsonl", "http.jsonl", "tls.jsonl", "findings.jsonl", "callouts.jsonl", "anomalies.jsonl",
                     "report.md", "report.html"] {
            #expect(try Data(contentsOf: a.appendingPathComponent(name)) == Data(contentsOf: b.appendingPathComponent(name)),
                    "\(name) differs between 1 and 3 workers")
        }
    }
}
