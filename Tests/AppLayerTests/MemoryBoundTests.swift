import Analysis
import Flows
import Protocols
import Rules
import Testing
import Wire
import TestSupport

/// Pathological streams through the whole engine, generated while read: the run must
/// finish with every buffer under its documented cap, and say when a cap was hit.
@Suite struct MemoryBoundTests {
    final class Collector: AppEventSink {
        var http: [HTTPTransaction] = []
        func dns(_ t: DNSTransaction) {}
        func http(_ t: HTTPTransaction) { http.append(t) }
        func tls(_ t: TLSHandshake) {}
    }

    static func segment(_ client: String, _ server: String, _ sport: Int, _ dport: Int, toServer: Bool,
                        seq: UInt32, ack: UInt32, flags: UInt8, payload: [UInt8] = []) -> [UInt8] {
        let tcp = PacketBuilder.tcp(toServer ? sport : dport, toServer ? dport : sport, seq: seq, ack: ack,
                                    flags: flags, payload: payload)
        return PacketBuilder.ethernet(PacketBuilder.ipv4(src: toServer ? client : server, dst: toServer ? server : client,
                                                         proto: 6, payload: tcp))
    }

    /// One GET answered by a 1 GiB body in 60,000-byte segments: the body is counted,
    /// only its inspection window is kept, and nothing waits in reassembly.
    @Test func oneGigabyteHTTPBody() throws {
        let bodyLength = 1 << 30
        let chunk = 60_000
        let filler = [UInt8](repeating: UInt8(ascii: "x"), count: chunk)
        let request = Array("GET /model.bin HTTP/1.1\r\nHost: big.example\r\n\r\n".utf8)
        let head = Array("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(bodyLength)\r\n\r\n".utf8)
        let (c, s) = ("10.0.0.1", "10.0.0.2")
        let clientISN: UInt32 = 1000, serverISN: UInt32 = 5000
        let bodySegments = (bodyLength + chunk - 1) / chunk
        let source = GeneratedCapture { i in
            let afterRequest = clientISN + 1 + UInt32(request.count)
            switch i {
            case 0: return Self.segment(c, s, 40000, 80, toServer: true, seq: clientISN, ack: 0, flags: TCPFlag.syn)
            case 1: return Self.segment(c, s, 40000, 80, toServer: false, seq: serverISN, ack: clientISN + 1,
                                        flags: TCPFlag.syn | TCPFlag.ack)
            case 2: return Self.segment(c, s, 40000, 80, toServer: true, seq: clientISN + 1, ack: serverISN + 1,
                                        flags: TCPFlag.ack | TCPFlag.psh, payload: request)
            case 3: return Self.segment(c, s, 40000, 80, toServer: false, seq: serverISN + 1, ack: afterRequest,
                                        flags: TCPFlag.ack | TCPFlag.psh, payload: head)
            case 4 ..< 4 + bodySegments:
                let offset = (i - 4) * chunk
                let n = min(chunk, bodyLength - offset)
                let seq = serverISN &+ 1 &+ UInt32(head.count) &+ UInt32(truncatingIfNeeded: offset)
                return Self.segment(c, s, 40000, 80, toServer: false, seq: seq, ack: afterRequest,
                                    flags: TCPFlag.ack, payload: n == chunk ? filler : Array(filler.prefix(n)))
            default: return nil
            }
        }
        let collector = Collector()
        var flows = 0
        let analyzer = try Analyzer(options: AnalysisOptions(), events: collector) { _, _, _ in flows += 1 }
        let (before, summary, after) = ResidentMemoryTurn.take {
            (residentMegabytes(), analyzer.analyze(name: "generated-1GiB-body", source: source), residentMegabytes())
        }
        #expect(summary.error == nil)
        #expect(source.bytesProduced > bodyLength)
        #expect(flows == 1)
        try #require(collector.http.count == 1)
        let t = collector.http[0]
        #expect(t.request?.uri == Array("/model.bin".utf8))
        #expect(t.response?.status == 200)
        let body = try #require(t.responseBody)
        #expect(body.wireBytes == bodyLength)
        #expect(body.decodedBytes == bodyLength)
        // Sent as it is and no rules run: nothing copied, the window's cut still counted.
        #expect(body.window.isEmpty)
        #expect(body.windowTruncated)
        #expect(summary.reassemblyPeakBytes == 0)
        // Generous against allocator noise; a body held in memory would add 1024 MB.
        #expect(after.current - before.current < 200, "RSS grew from \(before.current) to \(after.current) MB")
    }

    /// 100,000 connection attempts that are never answered (a SYN scan or a dead
    /// updater retrying) and one connection whose first segment never arrives, followed
    /// by a flood of later data: flows stay within the table cap, out-of-order bytes
    /// within the per-connection and global caps, and hitting them is counted.
    @Test func halfOpenFlowsAndEndlessOutOfOrderData() throws {
        let halfOpen = 100_000
        let floodSegments = 20_000
        let chunk = 1_000
        // Looks like HTTP, so the flow is parsed (and reassembled) from its first payload.
        let request = Array("GET /a HTTP/1.1\r\nHost: flood.example\r\nX-Pad: ".utf8)
        let filler = request + [UInt8](repeating: UInt8(ascii: "y"), count: chunk - request.count)
        let source = GeneratedCapture { i in
            if i < halfOpen {
                let client = "10.1.\(i / 250 % 250).\(i % 250 + 1)"
                return Self.segment(client, "198.51.100.7", 1024 + i % 60_000, 443, toServer: true,
                                    seq: UInt32(i), ack: 0, flags: TCPFlag.syn)
            }
            let j = i - halfOpen
            switch j {
            case 0: return Self.segment("10.2.0.1", "198.51.100.8", 50000, 80, toServer: true, seq: 100, ack: 0, flags: TCPFlag.syn)
            case 1: return Self.segment("10.2.0.1", "198.51.100.8", 50000, 80, toServer: false, seq: 900, ack: 101,
                                        flags: TCPFlag.syn | TCPFlag.ack)
            case 2 ..< 2 + floodSegments:
                // Bytes 101 ..< 101 + chunk never come; everything after them does.
                let seq = UInt32(101 + chunk * (j - 1))
                return Self.segment("10.2.0.1", "198.51.100.8", 50000, 80, toServer: true, seq: seq, ack: 901,
                                    flags: TCPFlag.ack, payload: filler)
            default: return nil
            }
        }
        var options = AnalysisOptions()
        options.flowLimits.maxFlows = 50_000
        var flows = 0
        var capacityEvictions = 0
        let analyzer = try Analyzer(options: options, events: Collector()) { _, reason, _ in
            flows += 1
            if reason == .capacity { capacityEvictions += 1 }
        }
        let summary = analyzer.analyze(name: "generated-half-open", source: source)
        #expect(summary.error == nil)
        #expect(summary.counts.tcp == halfOpen + 2 + floodSegments)
        #expect(flows == halfOpen + 1)
        #expect(summary.peakFlows <= 50_000)
        #expect(capacityEvictions > 0)
        #expect(summary.evictions["capacity"] == capacityEvictions)
        let limits = ReassemblyLimits()
        #expect(summary.reassemblyPeakBytes > 0)
        #expect(summary.reassemblyPeakBytes <= limits.perDirectionBytes)
        #expect(summary.reassemblyCapGaps > 0)
    }
}

/// Rule streams under many open connections: what they hold stays under the run's cap.
@Suite struct RuleMemoryBoundTests {
    /// 8,000 connections stay open, each client sending 20 KB in two segments before any
    /// closes: held in batches this would be 160 MB; the cap (here 16 MiB) makes streams
    /// scan at once and shrink their look-back, and says so; a token in the last segment
    /// of each connection is still found.
    @Test func manyOpenStreamsStayUnderTheCap() throws {
        let flows = 8_000
        let token = Array(" ghp_ya6VBiSZPk41c31U0jF5aLMarRasafo9sV4N\r\n".utf8)
        let part = [UInt8](repeating: UInt8(ascii: "a"), count: 10_000)
        func addr(_ i: Int) -> String { "10.\(1 + i / 65536).\(i / 256 % 256).\(i % 256)" }
        // Round 0: SYNs; round 1: first 10 KB; round 2: second 10 KB ending in the token.
        let source = GeneratedCapture { i in
            guard i < 3 * flows else { return nil }
            let round = i / flows, f = i % flows
            let seq: UInt32 = 1 + UInt32(round == 2 ? part.count : 0)
            switch round {
            case 0: return MemoryBoundTests.segment(addr(f), "192.0.2.1", 40000, 9999, toServer: true, seq: 0, ack: 0, flags: TCPFlag.syn)
            case 1: return MemoryBoundTests.segment(addr(f), "192.0.2.1", 40000, 9999, toServer: true, seq: seq, ack: 0,
                                                    flags: TCPFlag.ack, payload: part)
            default: return MemoryBoundTests.segment(addr(f), "192.0.2.1", 40000, 9999, toServer: true, seq: seq, ack: 0,
                                                     flags: TCPFlag.ack, payload: part + token)
            }
        }
        final class Count: AppEventSink {
            var findings = 0
            func dns(_ t: DNSTransaction) {}
            func http(_ t: HTTPTransaction) {}
            func tls(_ t: TLSHandshake) {}
            func finding(_ f: Finding) { if f.rule.kind == "github_token" { findings += 1 } }
        }
        let sink = Count()
        let engine = try Rules.RuleEngine(rules: Rules.RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path))
        let analyzer = try Analyzer(options: AnalysisOptions(), events: sink, rules: engine, scanBudget: 16 << 20) { _, _, _ in }
        let summary = analyzer.analyze(name: "generated-open-streams", source: source)
        #expect(summary.error == nil)
        #expect(sink.findings == flows)
        #expect(summary.scan.pressureTrims > 0)
        // Over the cap each stream keeps at most its 512-byte look-back (plus one chunk
        // being scanned): 16 MiB + 8,000 × 512 B here, against 160 MB without the cap.
        #expect(summary.scan.peakHeldBytes <= (16 << 20) + flows * RuleLimits.pressureWindow + 64 << 10,
                "\(summary.scan.peakHeldBytes)")
    }

    /// Parsers of many sessions hold bytes between packets: 4,000 unfinished 110 KB TLS
    /// hellos (a 462 MB capture) held 547 MB. Under a run-wide cap (lowered to 2 MiB
    /// here), the sessions past it stop parsing and say so; the first ones still parse.
    @Test func parserBuffersShareOneCap() throws {
        let flows = 64
        // A ClientHello claiming 100,000 bytes, in records of 16,000, never finished.
        let handshake: [UInt8] = [1, 0x01, 0x86, 0xA0, 3, 3] + [UInt8](repeating: 0x41, count: 90_000)
        var records: [UInt8] = []
        for start in stride(from: 0, to: handshake.count, by: 16_000) {
            let piece = handshake[start ..< min(handshake.count, start + 16_000)]
            records += [22, 3, 1] + PacketBuilder.be16(piece.count) + piece
        }
        var frames: [[UInt8]] = []
        for f in 0 ..< flows {
            let (c, s) = ("10.0.\(f / 200).\(f % 200 + 1)", "93.184.216.34")
            let port = 40_000 + f
            frames.append(MemoryBoundTests.segment(c, s, port, 443, toServer: true, seq: 1000, ack: 0, flags: TCPFlag.syn))
            frames.append(MemoryBoundTests.segment(c, s, port, 443, toServer: false, seq: 5000, ack: 1001, flags: TCPFlag.syn | TCPFlag.ack))
            for start in stride(from: 0, to: records.count, by: 1460) {
                frames.append(MemoryBoundTests.segment(c, s, port, 443, toServer: true, seq: 1001 + UInt32(start), ack: 5001, flags: TCPFlag.ack,
                                           payload: Array(records[start ..< min(records.count, start + 1460)])))
            }
        }
        var options = AnalysisOptions()
        options.appLimits.parserBytes = 2 << 20
        let analyzer = try Analyzer(options: options) { _, _, _ in }
        // All within a few seconds: every session is still open when the last one starts.
        let timed = frames.enumerated().map { (seconds: UInt32(1_767_225_600 + $0.offset / 1000), micros: UInt32($0.offset % 1000 * 1000), bytes: $0.element) }
        let summary = analyzer.analyze(name: "unfinished-hellos", bytes: PacketBuilder.pcap(timed))
        let capped = summary.anomalies.counts["app_buffer_cap"] ?? 0
        print("parser cap: \(capped) of \(flows) sessions stopped; anomalies \(summary.anomalies.counts)")
        // About 128 KiB a hello: some 16 fit in 2 MiB, the others stop.
        #expect(capped > flows / 2 && capped < flows)
        #expect(summary.anomalies.counts["tls_hello_too_long"] == nil)
    }

    /// Passive DNS is bounded by bytes as well as by count: 1.1 million answers with
    /// 250-byte names took 430 MB under the count alone. Older halves go, the newest
    /// names stay, and the run says how often.
    @Test func passiveDNSKeepsToItsBytes() {
        let table = PassiveDNS(capacity: 1 << 20, maxBytes: 100_000)
        for i in 0 ..< 2000 {
            let name = Array("\(i)-".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 240)
            table.learn(IPAddress(v4: 0x0A00_0000 + UInt32(i)), name: name, at: Int64(i))
            #expect(table.heldBytes <= table.maxBytes)
        }
        #expect(table.evictions > 0)
        #expect(table.count < 2000 && table.count > 100)
        #expect(table.name(for: IPAddress(v4: 0x0A00_0000 + 1999)).map { Array($0.prefix(5)) } == Array("1999-".utf8))
        #expect(table.name(for: IPAddress(v4: 0x0A00_0000)) == nil)
        // A name replaced by a longer one for the same address is counted once.
        let before = table.heldBytes
        table.learn(IPAddress(v4: 0x0A00_0000 + 1999), name: [UInt8](repeating: 0x62, count: 250), at: 3000)
        #expect(table.heldBytes <= table.maxBytes && table.heldBytes <= before + 10)
    }

    /// Sessions are bounded: a million flows of one small request each held 2.4 GB of
    /// sessions. 20,000 single-packet HTTP requests under a limit of 1,000 sessions: flows
    /// holding sessions leave the table oldest first (counted), and every request is still
    /// logged, by the flow that carried it.
    @Test func sessionsKeepToTheirLimit() throws {
        var frames: [[UInt8]] = []
        for f in 0 ..< 20_000 {
            let client = "10.\(f / 40_000).\(f / 200 % 200).\(f % 200 + 1)"
            frames.append(MemoryBoundTests.segment(client, "93.184.216.34", 1024 + f % 60_000, 80, toServer: true, seq: 7, ack: 0,
                                                   flags: TCPFlag.ack, payload: Array("GET /\(f) HTTP/1.1\r\nHost: a\r\n\r\n".utf8)))
        }
        let collector = MemoryBoundTests.Collector()
        var options = AnalysisOptions()
        options.appLimits.maxSessions = 1_000
        let analyzer = try Analyzer(options: options, events: collector) { _, _, _ in }
        // A millisecond apart: every flow is still open when the last one starts.
        let timed = frames.enumerated().map { (seconds: UInt32(1_767_225_600 + $0.offset / 1000), micros: UInt32($0.offset % 1000 * 1000), bytes: $0.element) }
        let summary = analyzer.analyze(name: "one-request-flows", bytes: PacketBuilder.pcap(timed))
        #expect(summary.flows == 20_000)
        #expect(summary.app.sessionCapEvictions >= 18_000 && summary.app.sessionCapEvictions == summary.evictions["capacity"])
        #expect(collector.http.count == 20_000)
        #expect(Set(collector.http.compactMap { $0.request.map { String(decoding: $0.uri, as: UTF8.self) } }).count == 20_000)
    }

    /// Queries and requests waiting for answers are bounded together: 8,000 ports of 256
    /// unanswered queries each held a gigabyte. Under a 64 KiB cap, 40 ports of 64 queries
    /// and 20 connections of 16 pipelined requests with no answer: the waiting ones of
    /// the session that grew are logged unanswered, and every one of them is logged.
    @Test func waitingQueriesAndRequestsKeepToTheirCap() throws {
        final class Counter: AppEventSink {
            var dns = 0, http = 0
            func dns(_ t: DNSTransaction) { dns += 1 }
            func http(_ t: HTTPTransaction) { http += 1 }
            func tls(_ t: TLSHandshake) {}
        }
        typealias B = PacketBuilder
        var frames: [[UInt8]] = []
        for port in 0 ..< 40 {
            for q in 0 ..< 64 {
                let name = "q\(port)-\(q)." + String(repeating: "a", count: 60) + ".example.com"
                frames.append(B.ethernet(B.ipv4(src: "10.0.0.5", dst: "10.0.0.1", proto: 17,
                                                payload: B.udp(30_000 + port, 53, B.dnsQuery(id: q, name: name)))))
            }
        }
        let request = Array("GET /x HTTP/1.1\r\nHost: a.example\r\nX-Pad: \(String(repeating: "p", count: 900))\r\n\r\n".utf8)
        for c in 0 ..< 20 {
            var seq: UInt32 = 1001
            for _ in 0 ..< 16 {
                frames.append(MemoryBoundTests.segment("10.0.0.5", "198.51.100.7", 40_000 + c, 80, toServer: true, seq: seq, ack: 1,
                                                       flags: TCPFlag.ack, payload: request))
                seq += UInt32(request.count)
            }
        }
        let counter = Counter()
        var options = AnalysisOptions()
        options.appLimits.pendingBytes = 64 << 10
        let analyzer = try Analyzer(options: options, events: counter) { _, _, _ in }
        let summary = analyzer.analyze(name: "waiting", bytes: B.pcap(frames: frames))
        #expect(counter.dns == 40 * 64 && counter.http == 20 * 16)
        #expect((summary.anomalies.counts["app_pending_cap"] ?? 0) > 10)
    }
}
