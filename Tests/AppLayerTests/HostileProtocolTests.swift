import Analysis
import Foundation
import Protocols
import Testing
import TestSupport

/// Captures an attacker or a broken machine would produce, built here: each is decoded
/// without a trap, with bounded work and memory, the anomaly named, and what is genuine
/// still found.
@Suite struct HostileProtocolTests {
    typealias B = PacketBuilder

    final class Events: AppEventSink {
        var http: [HTTPTransaction] = []
        var tls: [TLSHandshake] = []
        func dns(_ t: DNSTransaction) {}
        func http(_ t: HTTPTransaction) { http.append(t) }
        func tls(_ t: TLSHandshake) { tls.append(t) }
    }

    /// A TCP session from 10.9.0.1:40000 to 10.9.0.2:`port`: handshake, then the client's
    /// bytes in segments of `mss`, starting at sequence number `isn + 1`.
    static func session(port: Int, isn: UInt32, _ payload: [UInt8], mss: Int = 1400) -> [[UInt8]] {
        let c2s = { (p: [UInt8]) in B.ethernet(B.ipv4(src: "10.9.0.1", dst: "10.9.0.2", proto: 6, payload: p)) }
        let s2c = { (p: [UInt8]) in B.ethernet(B.ipv4(src: "10.9.0.2", dst: "10.9.0.1", proto: 6, payload: p)) }
        var frames = [c2s(B.tcp(40000, port, seq: isn, ack: 0, flags: 0x02)),
                      s2c(B.tcp(port, 40000, seq: 900, ack: isn &+ 1, flags: 0x12)),
                      c2s(B.tcp(40000, port, seq: isn &+ 1, ack: 901, flags: 0x10))]
        var seq = isn &+ 1
        var i = 0
        while i < payload.count {
            let piece = Array(payload[i ..< min(i + mss, payload.count)])
            frames.append(c2s(B.tcp(40000, port, seq: seq, ack: 901, flags: 0x18, payload: piece)))
            seq = seq &+ UInt32(piece.count)
            i += piece.count
        }
        frames.append(c2s(B.tcp(40000, port, seq: seq, ack: 901, flags: 0x11)))
        frames.append(s2c(B.tcp(port, 40000, seq: 901, ack: seq &+ 1, flags: 0x11)))
        return frames
    }

    static func analyze(_ frames: [[UInt8]]) throws -> (InputSummary, Events) {
        let events = Events()
        let analyzer = try Analyzer(options: AnalysisOptions(), events: events) { _, _, _ in }
        return (analyzer.analyze(name: "hostile", bytes: B.pcap(frames: frames)), events)
    }

    /// A ClientHello whose handshake header claims 16 MB: given up at the hello limit.
    @Test func tlsHelloClaiming16MB() throws {
        var record: [UInt8] = [22, 3, 1, 0x40, 0x00, 1, 0xFF, 0xFF, 0xFF]
        record += [UInt8](repeating: 0x41, count: 0x4000 - 4)
        var stream: [UInt8] = []
        for _ in 0..<40 { stream += record }   // 640 KB of "hello"
        let (summary, events) = try Self.analyze(Self.session(port: 443, isn: 1000, stream))
        #expect(summary.anomalies.counts["tls_hello_too_long"] == 1)
        #expect(events.tls.isEmpty)
        #expect(summary.flows == 1)
    }

    /// A ClientHello as large as a post-quantum one (1.8 KB), one record over two segments:
    /// the second segment continues the record (it was once taken for a non-TLS start).
    @Test func helloRecordOverTwoSegments() throws {
        let hello = B.clientHello("pq.example", padding: 1400)
        #expect(hello.count > 1460)
        let (summary, events) = try Self.analyze(Self.session(port: 443, isn: 77, hello, mss: 1000))
        #expect(summary.anomalies.total == 0)
        #expect(events.tls.first?.client?.serverName == Array("pq.example".utf8))
    }

    /// A request with a million header lines (7 MB): the head limit ends the direction
    /// once, the bytes after it are not buffered.
    @Test func httpWithAMillionHeaders() throws {
        var head = Array("GET /a HTTP/1.1\r\nHost: victim.example\r\n".utf8)
        head.reserveCapacity(7_100_000)
        for _ in 0..<1_000_000 { head += [UInt8(ascii: "X"), 58, 32, UInt8(ascii: "y"), 13, 10] }
        head += [13, 10]
        let started = Date()
        let (summary, events) = try Self.analyze(Self.session(port: 80, isn: 5000, head, mss: 8960))
        #expect(summary.anomalies.counts["http_head_too_long"] == 1)
        #expect(events.http.isEmpty)
        #expect(summary.reassemblyPeakBytes < 2 << 20)
        #expect(Date().timeIntervalSince(started) < 60)
    }

    /// IPv6 with 1000 extension headers (hop-by-hop, then destination options): the walk
    /// stops at its limit and names it; the packet is counted, nothing loops.
    @Test func ipv6With1000ExtensionHeaders() throws {
        var chain: [UInt8] = []
        for i in 0..<1000 { chain += [i == 999 ? 17 : 60, 0, 1, 4, 0, 0, 0, 0] }   // next header, length 0 (8 bytes), PadN
        let payload = chain + B.udp(1000, 53, B.dnsQuery(id: 1, name: "deep.example"))
        let frame = B.ethernet(B.ipv6(src: [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], dst: [0x2001, 0xdb8, 0, 0, 0, 0, 0, 2], next: 0, payload: payload),
                               type: 0x86DD)
        let (summary, _) = try Self.analyze([frame])
        #expect(summary.counts.ipv6 == 1)
        #expect(summary.anomalies.counts["too_many_ipv6_extension_headers"] == 1)
    }

    /// Teardrop: overlapping IPv4 fragments, the second starting inside the first. The
    /// overlap is counted, the first copy of each byte wins, the datagram is rebuilt once.
    @Test func overlappingFragments() throws {
        let udp = B.udp(7000, 7001, [UInt8](repeating: 0x42, count: 40))   // 48 bytes
        let first = B.ethernet(B.ipv4(src: "10.9.0.1", dst: "10.9.0.2", proto: 17, payload: Array(udp[0..<32]), id: 99, moreFragments: true))
        // Offset 24: 8 bytes inside the first fragment, then the rest.
        let second = B.ethernet(B.ipv4(src: "10.9.0.1", dst: "10.9.0.2", proto: 17, payload: [UInt8](repeating: 0xEE, count: 8) + Array(udp[32...]),
                                       id: 99, fragmentOffset: 24))
        let (summary, _) = try Self.analyze([first, second])
        #expect(summary.counts.reassembled == 1)
        #expect(summary.fragmentOverlaps == 1)
        #expect(summary.counts.udp == 1)
    }

    /// Sequence numbers that wrap past 2^32 in the middle of a request: the stream is put
    /// together across the wrap and the request is read whole.
    @Test func tcpSequenceWrap() throws {
        let body = String(repeating: "z", count: 3000)
        let request = Array("POST /wrap HTTP/1.1\r\nHost: wrap.example\r\nContent-Length: \(body.count)\r\n\r\n\(body)".utf8)
        let (summary, events) = try Self.analyze(Self.session(port: 80, isn: UInt32.max - 1500, request, mss: 1000))
        #expect(summary.anomalies.total == 0, "\(summary.anomalies.counts)")
        #expect(events.http.count == 1)
        #expect(events.http.first?.request?.uri == Array("/wrap".utf8))
        #expect(events.http.first?.requestBody?.wireBytes == 3000)
    }
}
