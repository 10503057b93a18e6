import Analysis
import Flows
import Foundation
import Rules
import Testing
import TestSupport
import Wire

/// Collects findings from an analysis.
final class FindingCollector: AppEventSink {
    var findings: [Finding] = []
    func dns(_ t: DNSTransaction) {}
    func http(_ t: HTTPTransaction) {}
    func tls(_ t: TLSHandshake) {}
    func finding(_ f: Finding) { findings.append(f) }
}

/// A canary planted in a capture built here is found in each of the ways software leaks
/// it, with the frames that carry it.
@Suite struct CanaryCaptureTests {
    static let canary = "PH-CANARY-5d1e0b77"
    typealias B = PacketBuilder

    /// Frames of a client→server TCP connection; `segments` are the client's payloads,
    /// each in its own frame. Returns the frame numbers (1-based) of those segments.
    static func session(_ frames: inout [[UInt8]], dst: String, sport: Int, dport: Int, segments: [[UInt8]]) -> [Int] {
        let host = "10.0.0.5"
        let c2s = { (p: [UInt8]) in B.ethernet(B.ipv4(src: host, dst: dst, proto: 6, payload: p)) }
        let s2c = { (p: [UInt8]) in B.ethernet(B.ipv4(src: dst, dst: host, proto: 6, payload: p)) }
        frames.append(c2s(B.tcp(sport, dport, seq: 100, ack: 0, flags: 0x02)))
        frames.append(s2c(B.tcp(dport, sport, seq: 900, ack: 101, flags: 0x12)))
        var seq: UInt32 = 101
        var numbers: [Int] = []
        for s in segments {
            frames.append(c2s(B.tcp(sport, dport, seq: seq, ack: 901, flags: 0x18, payload: s)))
            numbers.append(frames.count)
            seq += UInt32(s.count)
            frames.append(s2c(B.tcp(dport, sport, seq: 901, ack: seq, flags: 0x10)))
        }
        frames.append(c2s(B.tcp(sport, dport, seq: seq, ack: 901, flags: 0x11)))
        frames.append(s2c(B.tcp(dport, sport, seq: 901, ack: seq + 1, flags: 0x11)))
        return numbers
    }


    @Test func canaryFoundEveryWay() throws {
        var frames: [[UInt8]] = []
        let c = Array(Self.canary.utf8)

        // 1. Plain, split across two TCP segments of one request body.
        let body = Array("{\"user\":\"x\",\"token\":\"\(Self.canary)\"}".utf8)
        let head = Array("POST /v1/events HTTP/1.1\r\nHost: telemetry.example.net\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        let cut = head.count + 26   // inside the canary
        let all = head + body
        let splitFrames = Self.session(&frames, dst: "198.51.100.1", sport: 50001, dport: 80, segments: [Array(all[..<cut]), Array(all[cut...])])

        // 2. In a gzip-compressed, chunked request body (two chunks, two segments).
        let gz = try gzip(Array("{\"note\":\"\(Self.canary)\"}".utf8))
        let half = gz.count / 2
        func chunk(_ b: ArraySlice<UInt8>) -> [UInt8] { Array(String(b.count, radix: 16).utf8) + [13, 10] + b + [13, 10] }
        let gzHead = Array("POST /upload HTTP/1.1\r\nHost: logs.example.net\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n".utf8)
        let gzFrames = Self.session(&frames, dst: "198.51.100.2", sport: 50002, dport: 80,
                                    segments: [gzHead + chunk(gz[..<half]), chunk(gz[half...]) + Array("0\r\n\r\n".utf8)])

        // 3. Base64 in a query string.
        let b64 = Data(("{\"id\":\"" + Self.canary + "\"}").utf8).base64EncodedString()
        let uriFrames = Self.session(&frames, dst: "198.51.100.3", sport: 50003, dport: 8080,
                                     segments: [Array("GET /collect?d=\(b64) HTTP/1.1\r\nHost: a.example.net\r\n\r\n".utf8)])

        // 4. Base32 over the labels of one DNS name (a tunnel).
        let b32 = B.base32(c).lowercased()
        let labels = [String(b32.prefix(14)), String(b32.dropFirst(14))]
        let name = labels.joined(separator: ".") + ".t.tunnel-example.net"
        frames.append(B.ethernet(B.ipv4(src: "10.0.0.5", dst: "10.0.0.1", proto: 17, payload: B.udp(53001, 53, B.dnsQuery(id: 7, name: name)))))
        let dnsFrame = frames.count

        let pcap = B.pcap(frames: frames)
        let engine = try RuleEngine(rules: RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path) + [Rule.canary(Self.canary, index: 1)])
        let sink = FindingCollector()
        let analyzer = try Analyzer(options: AnalysisOptions(), events: sink, rules: engine) { _, _, _ in }
        let summary = analyzer.analyze(name: "canary.pcap", bytes: pcap)
        #expect(summary.error == nil)

        let canaries = sink.findings.filter { $0.rule.kind == "canary" }
        for f in canaries { print("canary: \(f.field) \(f.match.encoding) frames \(f.origin.frame)-\(f.lastFrame) port \(f.origin.flow.responderPort)") }

        let split = canaries.first { $0.origin.flow.responderPort == 80 && $0.field == "tcp.stream" && $0.origin.flow.originatorPort == 50001 }
        #expect(split?.match.encoding == .plain)
        #expect(split?.origin.frame == splitFrames[0] && split?.lastFrame == splitFrames[1])
        #expect(split?.match.range.lowerBound == head.count + 21)   // stream offset of the canary

        let gzip = canaries.first { $0.field == "http.request.body" }
        #expect(gzip?.match.encoding == .plain && gzip?.origin.flow.originatorPort == 50002)
        #expect(gzip?.origin.frame == gzFrames[0] && gzip?.lastFrame == gzFrames[1])

        let uri = canaries.first { $0.origin.flow.originatorPort == 50003 }
        #expect(uri?.match.encoding == .base64 && uri?.field == "tcp.stream")
        #expect(uri?.origin.frame == uriFrames[0] && uri?.lastFrame == uriFrames[0])

        let dns = canaries.first { $0.field == "dns.tunnel" }
        #expect(dns?.match.encoding == .base32 && dns?.origin.frame == dnsFrame && dns?.lastFrame == dnsFrame)
        #expect(dns.map { String(decoding: $0.domain ?? [], as: UTF8.self) } == "t.tunnel-example.net")
        #expect(canaries.count == 4, "\(canaries.map(\.field))")
    }
}

extension CanaryCaptureTests {
    /// Base32 of the canary spread over three queries (different source ports, as stub
    /// resolvers send them) under one parent: found once, from the first query's frame
    /// to the last one's; unrelated lookups between them do not break the stream.
    @Test func canaryOverSuccessiveQueries() throws {
        let b32 = B.base32(Array(Self.canary.utf8)).lowercased()
        let parts = [String(b32.prefix(12)), String(b32.dropFirst(12).prefix(12)), String(b32.dropFirst(24))]
        var frames: [[UInt8]] = []
        func query(_ name: String, _ port: Int, _ id: Int) {
            frames.append(B.ethernet(B.ipv4(src: "10.0.0.5", dst: "10.0.0.1", proto: 17,
                                            payload: B.udp(port, 53, B.dnsQuery(id: id, name: name)))))
        }
        query("\(parts[0]).c.exfil-example.org", 53101, 1)
        query("www.example.net", 53102, 2)
        query("\(parts[1]).c.exfil-example.org", 53103, 3)
        query("\(parts[2]).c.exfil-example.org", 53104, 4)
        let pcap = B.pcap(frames: frames)
        let engine = try RuleEngine(rules: [Rule.canary(Self.canary, index: 1)])
        let sink = FindingCollector()
        let analyzer = try Analyzer(options: AnalysisOptions(), events: sink, rules: engine) { _, _, _ in }
        _ = analyzer.analyze(name: "tunnel.pcap", bytes: pcap)
        let hits = sink.findings.filter { $0.field == "dns.tunnel" }
        #expect(hits.count == 1)
        #expect(hits.first?.match.encoding == .base32 && hits.first?.origin.frame == 1 && hits.first?.lastFrame == 4)
        #expect(hits.first.map { String(decoding: $0.domain ?? [], as: UTF8.self) } == "c.exfil-example.org")
    }
}

extension CanaryCaptureTests {
    /// The second half of the canary arrives first (reordered in the capture): the frames
    /// reported are those that carried its first and its last byte.
    @Test func outOfOrderHalvesKeepTheirFrames() throws {
        let payload = Array("POST /x HTTP/1.1\r\nHost: h.example.net\r\nContent-Length: 40\r\n\r\nv=\(Self.canary)&more=1234567890123".utf8)
        let cut = payload.count - 25
        let c2s = { (p: [UInt8]) in B.ethernet(B.ipv4(src: "10.0.0.5", dst: "198.51.100.9", proto: 6, payload: p)) }
        let s2c = { (p: [UInt8]) in B.ethernet(B.ipv4(src: "198.51.100.9", dst: "10.0.0.5", proto: 6, payload: p)) }
        let frames: [[UInt8]] = [
            c2s(B.tcp(50010, 80, seq: 100, ack: 0, flags: 0x02)),
            s2c(B.tcp(80, 50010, seq: 900, ack: 101, flags: 0x12)),
            c2s(B.tcp(50010, 80, seq: 101 + UInt32(cut), ack: 901, flags: 0x18, payload: Array(payload[cut...]))),   // frame 3
            c2s(B.tcp(50010, 80, seq: 101, ack: 901, flags: 0x18, payload: Array(payload[..<cut]))),                    // frame 4
            c2s(B.tcp(50010, 80, seq: 101 + UInt32(payload.count), ack: 901, flags: 0x11)),
        ]
        let pcap = B.pcap(frames: frames)
        let engine = try RuleEngine(rules: [Rule.canary(Self.canary, index: 1)])
        let sink = FindingCollector()
        let analyzer = try Analyzer(options: AnalysisOptions(), events: sink, rules: engine) { _, _, _ in }
        _ = analyzer.analyze(name: "reordered.pcap", bytes: pcap)
        let hit = sink.findings.first { $0.field == "tcp.stream" }
        #expect(sink.findings.count == 1)
        #expect(hit?.origin.frame == 4 && hit?.lastFrame == 3)
    }
}

extension CanaryCaptureTests {
    /// A canary in a datagram no decoder claims (UDP to a port of its own, between many
    /// datagrams without one): found in its frame, with the flow's community_id, which a
    /// datagram gets only when it has a finding.
    @Test func canaryInARawDatagramCarriesItsFlowsCommunityID() throws {
        var frames: [[UInt8]] = []
        func datagram(_ payload: [UInt8]) {
            frames.append(B.ethernet(B.ipv4(src: "10.0.0.5", dst: "198.51.100.7", proto: 17, payload: B.udp(40000, 5140, payload))))
        }
        for i in 0 ..< 50 { datagram(Array("<13>metrics seq=\(i) load=0.\(i)".utf8)) }
        datagram(Array("<13>app event token=\(Self.canary)".utf8))
        let canaryFrame = frames.count
        for i in 0 ..< 10 { datagram(Array("<13>metrics seq=\(50 + i)".utf8)) }
        let engine = try RuleEngine(rules: [Rule.canary(Self.canary, index: 1)])
        let sink = FindingCollector()
        let analyzer = try Analyzer(options: AnalysisOptions(), events: sink, rules: engine) { _, _, _ in }
        _ = analyzer.analyze(name: "udp.pcap", bytes: B.pcap(frames: frames))
        #expect(sink.findings.count == 1)
        let f = try #require(sink.findings.first)
        #expect(f.field == "udp.payload" && f.origin.frame == canaryFrame && f.origin.fromOriginator)
        let expected = CommunityID.compute(source: IPAddress("10.0.0.5")!, destination: IPAddress("198.51.100.7")!,
                                           sourcePort: 40000, destinationPort: 5140, proto: 17)
        #expect(f.origin.communityID.description == expected && !f.origin.communityID.isEmpty)
    }
}

extension CanaryCaptureTests {
    /// A raw TCP stream to an address passive DNS learns a name for in the middle of it: a
    /// finding before the answer has no name, one after it has the answer's, with 1 job
    /// and in the 2-job pipeline (which takes the name with every chunk it queues).
    @Test func aNameLearnedMidStreamNamesTheFindingsAfterIt() throws {
        var frames: [[UInt8]] = []
        let server = "198.51.100.20"
        let c2s = { (p: [UInt8]) in B.ethernet(B.ipv4(src: "10.0.0.5", dst: server, proto: 6, payload: p)) }
        let s2c = { (p: [UInt8]) in B.ethernet(B.ipv4(src: server, dst: "10.0.0.5", proto: 6, payload: p)) }
        frames.append(c2s(B.tcp(50100, 9000, seq: 100, ack: 0, flags: 0x02)))
        frames.append(s2c(B.tcp(9000, 50100, seq: 900, ack: 101, flags: 0x12)))
        // The first segment fills a scan batch (16 KiB), so its finding is made at once.
        let first = Array("first \(Self.canary) end\n".utf8) + Array(repeating: UInt8(ascii: "."), count: RuleLimits.scanBatch)
        let second = Array("second \(Self.canary)x end\n".utf8)
        frames.append(c2s(B.tcp(50100, 9000, seq: 101, ack: 901, flags: 0x18, payload: first)))
        // The answer: late.example.net A 198.51.100.20 (the answer's name points at the question's).
        var answer = B.be16(9) + [0x81, 0x80] + B.be16(1) + B.be16(1) + B.be16(0) + B.be16(0)
        for label in ["late", "example", "net"] { answer.append(UInt8(label.utf8.count)); answer += Array(label.utf8) }
        answer += [0] + B.be16(1) + B.be16(1) + [0xC0, 0x0C] + B.be16(1) + B.be16(1) + B.be32(300) + B.be16(4) + B.v4(server)
        frames.append(B.ethernet(B.ipv4(src: "10.0.0.5", dst: "10.0.0.1", proto: 17, payload: B.udp(53300, 53, B.dnsQuery(id: 9, name: "late.example.net")))))
        frames.append(B.ethernet(B.ipv4(src: "10.0.0.1", dst: "10.0.0.5", proto: 17, payload: B.udp(53, 53300, answer))))
        frames.append(c2s(B.tcp(50100, 9000, seq: 101 + UInt32(first.count), ack: 901, flags: 0x18, payload: second)))
        let pcap = B.pcap(frames: frames)
        for jobs in [1, 2] {
            let names = try Self.canaryFindings(in: pcap, jobs: jobs).map { Self.nameOf($0) }
            #expect(names == ["-", "late.example.net"], "jobs \(jobs)")
        }
    }

    /// The canary's findings in a capture, in frame order, with `jobs` jobs.
    static func canaryFindings(in pcap: [UInt8], jobs: Int) throws -> [Finding] {
        let engine = try RuleEngine(rules: [Rule.canary(canary, index: 1)])
        let sink = FindingCollector()
        var options = AnalysisOptions()
        options.jobs = jobs
        let analyzer = try Analyzer(options: options, events: sink, rules: engine) { _, _, _ in }
        _ = analyzer.analyze(name: "names.pcap", bytes: pcap)
        return sink.findings.sorted { $0.origin.frame < $1.origin.frame }
    }

    /// A finding's destination name, "-" for none.
    static func nameOf(_ f: Finding) -> String { f.domain.map { String(decoding: $0, as: UTF8.self) } ?? "-" }

    /// An HTTP request whose Host is parsed after its first segment was queued for the
    /// scan: that segment's finding has no name, the next segment's has the Host, with 1
    /// job and in the 2-job pipeline (which copies a stream's name once per batch until
    /// the session's names change).
    @Test func theHostNamesOnlyTheFindingsAfterItIsParsed() throws {
        let server = "198.51.100.30"
        let c2s = { (p: [UInt8]) in B.ethernet(B.ipv4(src: "10.0.0.5", dst: server, proto: 6, payload: p)) }
        let s2c = { (p: [UInt8]) in B.ethernet(B.ipv4(src: server, dst: "10.0.0.5", proto: 6, payload: p)) }
        // Each body part fills a scan batch (16 KiB), so its finding is made with its chunk
        // (not at the stream's close, which takes the name of its own time).
        let filler = Array(repeating: UInt8(ascii: "."), count: RuleLimits.scanBatch)
        let body1 = Array("first \(Self.canary) end\n".utf8) + filler
        let body2 = Array("second \(Self.canary)x end\n".utf8) + filler
        let head = Array("POST /up HTTP/1.1\r\nHost: up.example.org\r\nContent-Length: \(body1.count + body2.count)\r\n\r\n".utf8)
        let first = head + body1
        let frames = [
            c2s(B.tcp(50200, 80, seq: 100, ack: 0, flags: 0x02)),
            s2c(B.tcp(80, 50200, seq: 900, ack: 101, flags: 0x12)),
            c2s(B.tcp(50200, 80, seq: 101, ack: 901, flags: 0x18, payload: first)),
            c2s(B.tcp(50200, 80, seq: 101 + UInt32(first.count), ack: 901, flags: 0x18, payload: body2)),
        ]
        let pcap = B.pcap(frames: frames)
        for jobs in [1, 2] {
            let names = try Self.canaryFindings(in: pcap, jobs: jobs).filter { $0.field == "tcp.stream" }
                .map { "\($0.origin.frame) " + Self.nameOf($0) }
            #expect(names == ["3 -", "4 up.example.org"], "jobs \(jobs)")
        }
    }
}
