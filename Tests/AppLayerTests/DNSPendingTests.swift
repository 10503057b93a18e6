import Analysis
import Protocols
import Testing
import TestSupport

/// Queries waiting for an answer on one flow: a retry of an id leaves the first query
/// unanswered, an answer joins the latest query of its id, and beyond the per-flow limit
/// the oldest query is let go (counted) — every query is still logged once, in order.
@Suite struct DNSPendingTests {
    final class Collector: AppEventSink {
        var dns: [DNSTransaction] = []
        func dns(_ t: DNSTransaction) { dns.append(t) }
        func http(_ t: HTTPTransaction) {}
        func tls(_ t: TLSHandshake) {}
    }

    static func frame(_ message: [UInt8], toResolver: Bool) -> [UInt8] {
        let (client, resolver) = ("10.0.0.1", "10.0.0.53")
        let udp = toResolver ? PacketBuilder.udp(40_000, 53, message) : PacketBuilder.udp(53, 40_000, message)
        return PacketBuilder.ethernet(PacketBuilder.ipv4(src: toResolver ? client : resolver, dst: toResolver ? resolver : client,
                                                         proto: 17, payload: udp))
    }

    /// An answer to `dnsQuery(id:name:)`: the question, then one A record pointing at it.
    static func answer(id: Int, name: String, address: [UInt8]) -> [UInt8] {
        var m = PacketBuilder.dnsQuery(id: id, name: name)
        m[2] = 0x81; m[3] = 0x80          // response, recursion desired and available
        m[7] = 1                          // one answer
        return m + [0xC0, 0x0C] + PacketBuilder.be16(1) + PacketBuilder.be16(1) + PacketBuilder.be32(300)
            + PacketBuilder.be16(4) + address
    }

    @Test func retriesAnswersAndTheLimit() throws {
        var frames: [[UInt8]] = []
        frames.append(Self.frame(PacketBuilder.dnsQuery(id: 1, name: "a.example.com"), toResolver: true))    // 1
        frames.append(Self.frame(PacketBuilder.dnsQuery(id: 1, name: "a.example.com"), toResolver: true))    // 2: retry
        frames.append(Self.frame(Self.answer(id: 1, name: "a.example.com", address: [192, 0, 2, 7]), toResolver: false))  // 3
        // 300 queries never answered, ids 100 to 399 (frames 4 to 303).
        for id in 100 ..< 400 { frames.append(Self.frame(PacketBuilder.dnsQuery(id: id, name: "q\(id).example.com"), toResolver: true)) }

        let collector = Collector()
        let analyzer = try Analyzer(options: AnalysisOptions(), events: collector) { _, _, _ in }
        let summary = analyzer.analyze(name: "pending.pcap", bytes: PacketBuilder.pcap(frames: frames))
        let limit = AppLimits().dnsPendingPerFlow
        #expect(limit == 256)
        #expect(summary.app.dnsPendingDropped == 300 - limit)

        let logged = collector.dns
        #expect(logged.count == 2 + 300)
        // The first query, unanswered, logged when its retry came; then the retry with its answer.
        #expect(logged[0].query?.id == 1 && logged[0].response == nil && logged[0].origin.frame == 1)
        #expect(logged[1].query?.id == 1 && logged[1].response?.id == 1 && logged[1].origin.frame == 2 && logged[1].responseFrame == 3)
        // The rest in the order asked: the 44 oldest as the limit let them go, the others
        // when the flow ended.
        #expect(logged[2...].map { Int($0.query?.id ?? 0) } == Array(100 ..< 400))
        #expect(logged[2...].allSatisfy { $0.response == nil })
        #expect(logged[2...].map(\.origin.frame) == Array(4 ..< 304))
    }
}
