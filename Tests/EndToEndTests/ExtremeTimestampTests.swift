import Foundation
import Testing
@testable import Report
import TestSupport

/// pcapng timestamps are 64-bit counts with a resolution and an offset of the capture's
/// choosing: a hostile file puts packets at the two ends of Int64's range (the reader
/// clamps an overflowing count to Int64.max; a huge negative offset wraps near
/// Int64.min). Durations, round-trip times, fragment timeouts and the RFC 3339 text of
/// such packets must not trap (a fuzzer found the fragment timeout doing so).
@Suite struct ExtremeTimestampTests {
    typealias B = PacketBuilder

    /// A pcapng block: type, total length, body padded to 4 bytes, total length again.
    static func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
        let padded = body + [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
        let length = UInt32(12 + padded.count)
        return B.le32(type) + B.le32(length) + padded + B.le32(length)
    }

    static func le64(_ v: UInt64) -> [UInt8] { B.le32(UInt32(v & 0xFFFF_FFFF)) + B.le32(UInt32(v >> 32)) }

    /// Interface 0 counts so many microseconds that nanoseconds overflow (clamped to
    /// Int64.max); interface 1 starts at 0 with an offset of -9,223,372,036 s (wraps to
    /// 854,775,808 ns above Int64.min). Each packet alternates between them.
    static func capture() -> [UInt8] {
        let shb = block(0x0A0D_0D0A, B.le32(0x1A2B_3C4D) + [1, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 8))
        let idbMax = block(1, [1, 0, 0, 0] + B.le32(65535) + [0, 0, 0, 0])
        let offset = UInt64(bitPattern: -9_223_372_036)
        let idbMin = block(1, [1, 0, 0, 0] + B.le32(65535) + [14, 0, 8, 0] + le64(offset) + [0, 0, 0, 0])
        func packet(_ interface: UInt32, _ frame: [UInt8]) -> [UInt8] {
            let units: UInt64 = interface == 0 ? UInt64.max : 0
            return block(6, B.le32(interface) + B.le32(UInt32(units >> 32)) + B.le32(UInt32(units & 0xFFFF_FFFF))
                + B.le32(UInt32(frame.count)) + B.le32(UInt32(frame.count)) + frame)
        }
        let datagram = B.udp(5000, 9999, [UInt8](repeating: 0x41, count: 40))   // 48 bytes, in two fragments
        let first = B.ethernet(B.ipv4(src: "10.0.0.1", dst: "203.0.113.9", proto: 17, payload: Array(datagram[0 ..< 24]), id: 7,
                                      moreFragments: true))
        let second = B.ethernet(B.ipv4(src: "10.0.0.1", dst: "203.0.113.9", proto: 17, payload: Array(datagram[24...]), id: 7,
                                       fragmentOffset: 24))
        let query = B.dnsQuery(id: 5, name: "far.example.com")
        var answer = query
        answer[2] = 0x81; answer[3] = 0x80
        let ask = B.ethernet(B.ipv4(src: "10.0.0.1", dst: "203.0.113.53", proto: 17, payload: B.udp(40000, 53, query)))
        let reply = B.ethernet(B.ipv4(src: "203.0.113.53", dst: "10.0.0.1", proto: 17, payload: B.udp(53, 40000, answer)))
        let syn = B.ethernet(B.ipv4(src: "10.0.0.1", dst: "203.0.113.80", proto: 6,
                                    payload: B.tcp(41000, 80, seq: 1, ack: 0, flags: 0x02)))
        let synAck = B.ethernet(B.ipv4(src: "203.0.113.80", dst: "10.0.0.1", proto: 6,
                                       payload: B.tcp(80, 41000, seq: 9, ack: 2, flags: 0x12)))
        return shb + idbMax + idbMin + packet(0, first) + packet(1, second) + packet(0, ask) + packet(1, reply)
            + packet(1, syn) + packet(0, synAck) + packet(1, first) + packet(0, second)
    }

    @Test func packetsAtBothEndsOfTime() throws {
        try #require(FileManager.default.isExecutableFile(atPath: BuiltCommand.url.path), "phonehome not built beside the tests")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-time-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("ends-of-time.pcapng")
        try Data(Self.capture()).write(to: input)
        let out = dir.appendingPathComponent("out")
        for jobs in ["1", "2"] {
            let r = try BuiltCommand.run(["analyze", input.path, "--out", out.path, "-q", "-j", jobs], stdin: nil)
            #expect(r.status == 0, "exit \(r.status): \(r.errors)")
            let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json")))
                                        as? [String: Any])
            let inputSummary = try #require((manifest["inputs"] as? [[String: Any]])?.first)
            #expect(inputSummary["frames"] as? Int == 8)
            let packets = try #require(inputSummary["packets"] as? [String: Any])
            #expect(packets["fragments"] as? Int == 4)
            // The first datagram completes (its second fragment is "earlier", no timeout
            // runs backwards); the second one's first fragment is 2^64 ns older than its
            // last when that comes, so it timed out.
            #expect(packets["reassembled"] as? Int == 1)
            // Nanoseconds wrapped to -9,223,372,036 s, and clamped at Int64.max.
            #expect(inputSummary["first_packet"] as? String == "1677-09-21T00:12:44.000000Z")
            #expect(inputSummary["last_packet"] as? String == "2262-04-11T23:47:16.854775Z")
            let dns = try String(contentsOf: out.appendingPathComponent("dns.jsonl"), encoding: .utf8)
            #expect(dns.contains("far.example.com"))
        }
    }

    /// The text of every timestamp, the extremes included, is well formed.
    @Test func rfc3339AtTheExtremes() {
        for ns: Int64 in [.min, .min + 1, .min + 999_999_999, -1, 0, 1, .max - 1, .max] {
            let text = rfc3339(ns)
            #expect(text.hasSuffix("Z") && text.count >= 27, "\(ns): \(text)")
            let w = JSONWriter()
            w.beginObject()
            w.timeField("t", ns)
            w.endObject()
            #expect(w.bytes.count > 10)
        }
    }
}
